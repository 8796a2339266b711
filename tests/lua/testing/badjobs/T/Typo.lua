local W = require("gdlua").worker()
W:job("x", { max_procesess = 2 }, function() end)
return W
