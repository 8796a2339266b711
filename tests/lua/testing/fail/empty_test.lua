-- A test file that defines no test.
local t = require "gdlua.testing"
