-- GET with `Authorization: Token <key>`: wrk -s get.lua URL -- KEY
dofile("report.lua")

function init(args)
  if args[1] then
    wrk.headers["Authorization"] = "Token " .. args[1]
  end
end
