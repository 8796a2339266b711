local t = require "gdlua.testing"
t.test("never", function() end
