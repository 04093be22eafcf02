-- POST a JSON body with a token: wrk -s post.lua URL -- KEY BODY
dofile("report.lua")

function init(args)
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Token " .. args[1]
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = args[2]
end
