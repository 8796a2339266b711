-- Not a test file (no _test.lua, no test_ prefix): gdlua test must not run it.
error("helper.lua was run as a test")
