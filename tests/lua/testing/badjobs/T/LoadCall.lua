local c = require("gdlua.client").new()
local W = require("gdlua").worker()
W:job("x", function() end)
c:call("T::LoadCall::x", "")
return W
