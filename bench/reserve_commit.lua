-- Reserve, then commit each reservation: wrk -s reserve_commit.lua URL -- KEY USER_UUID
-- URL is the reservations collection (.../reservations/). Reservations
-- created and not yet committed queue up, so responses arriving on any
-- connection in any order are all committed: two requests per pair.
dofile("report.lua")

local pending = {}
local reserve_body, commit_body, base

function init(args)
  wrk.headers["Authorization"] = "Token " .. args[1]
  wrk.headers["Content-Type"] = "application/json"
  reserve_body = '{"user_uuid": "' .. args[2] .. '", "tokens": 50}'
  commit_body = '{"tokens": 40}'
  base = wrk.path
end

function request()
  local uuid = table.remove(pending)
  if uuid then
    return wrk.format("POST", base .. uuid .. "/commit/", nil, commit_body)
  end
  return wrk.format("POST", base, nil, reserve_body)
end

function response(status, headers, body)
  if status == 201 then
    local uuid = body:match('"uuid"%s*:%s*"(%x+)"')
    if uuid and body:match('"state"%s*:%s*"active"') then
      table.insert(pending, uuid)
    end
  end
end
