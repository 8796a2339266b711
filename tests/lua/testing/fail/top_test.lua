local t = require "gdlua.testing"
t.load("badjobs/T/Typo.lua")
t.test("never runs", function() end)
