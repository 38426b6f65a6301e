-- The requests wrk sends for bench/run.sh: LoadGen's (the same body from bench/body.py, the same rotation through a
-- file of API keys or bearer tokens, a fresh id over each log's id placeholder), from a generator that costs a
-- fraction of LoadGen's CPU per request. Ends by printing one line of JSON in LoadGen's shape.
--   wrk -s bench/wrk.lua URL -- scenario=NAME connections=N method=POST|GET [header='X-API-Key: ' values=FILE]
--                               [body=FILE logs=LOGS_PER_REQUEST] [accept-encoding=CODINGS]
-- A values file holds one API key or bearer token per line, each line ended by a newline.
-- TRACKER_WRK_PORTS=P1,P2,... (with -t as many threads) sends each thread to its own API process on the URL's host:
-- setup() runs before wrk hands the script its arguments, so the ports come from the environment.
-- wrk leaves requests in flight at its deadline uncounted, so its 201s are a lower bound on the rows written:
-- bench/run.sh takes the exact count from LoadGen.
local ID_PLACEHOLDER = string.rep("@", 16)
local threads = {}
local requests, heads, pieces = {}, {}, nil
local next_request, id_prefix, sequence = 1, nil, 0

local function read_file(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

-- Runs in wrk's main Lua state, once per thread before that thread's init.
function setup(thread)
  thread:set("index", #threads)
  local ports = os.getenv("TRACKER_WRK_PORTS")
  if ports and ports ~= "" then
    local list = {}
    for port in ports:gmatch("%d+") do
      table.insert(list, port)
    end
    thread.addr = wrk.lookup(wrk.host, list[#threads % #list + 1])[1]
  end
  table.insert(threads, thread)
end

function init(args)
  local options = {}
  for _, argument in ipairs(args) do
    local name, value = argument:match("^([%w-]+)=(.*)$")
    options[name] = value
  end
  -- Globals, read by done() through the thread.
  scenario, connections, logs_per_request = options.scenario, tonumber(options.connections), tonumber(options.logs or "0")

  local body = options.body and read_file(options.body) or nil
  if body and body:find(ID_PLACEHOLDER, 1, true) then
    pieces = {}
    for piece in (body .. ID_PLACEHOLDER):gmatch("(.-)" .. ID_PLACEHOLDER) do
      table.insert(pieces, piece)
    end
    -- This run, this thread, this request: 3 + 3 + 10 hexadecimal characters, as LoadGen writes them.
    math.randomseed(os.time() * 1000 + index)
    id_prefix = string.format("%03x%03x", math.random(0, 0xfff), index)
  end

  -- One request per key or token, or one without either.
  local values = options.values and read_file(options.values) or "\n"
  local header_name, header_prefix = (options.header or ""):match("^(.-): ?(.*)$")
  for value in values:gmatch("[^\n]*\n") do
    local headers = {}
    if options.values then
      headers[header_name] = header_prefix .. value:sub(1, -2)
    end
    if body then
      headers["Content-Type"] = "application/json"
    end
    if options["accept-encoding"] then
      headers["Accept-Encoding"] = options["accept-encoding"]
    end
    local request = wrk.format(options.method, wrk.path, headers, body)
    table.insert(requests, request)
    table.insert(heads, request:sub(1, #request - (body and #body or 0)))
  end
  -- Threads start at different places in the rotation, as LoadGen's connections do.
  next_request = index * 7919 % #requests + 1
end

function request()
  local current = next_request
  next_request = current % #requests + 1
  if not pieces then
    return requests[current]
  end
  sequence = sequence + 1
  return heads[current] .. table.concat(pieces, string.format("%s%010x", id_prefix, sequence))
end

function done(summary, latency)
  local thread = threads[1]
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  local acknowledged = summary.requests - errors.status
  local logs = thread:get("logs_per_request")
  io.write(string.format(
    '{"scenario":"%s","connections":%d,"requestsPerSecond":%.1f,"logsPerSecond":%.1f,"p50Ms":%.3f,"p99Ms":%.3f,'
      .. '"maxMs":%.3f,"errors":%d,"acknowledgedRequests":%d,"acknowledgedLogs":%d}\n',
    thread:get("scenario"), thread:get("connections"), summary.requests / seconds, acknowledged * logs / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    errors.status + errors.connect + errors.read + errors.write, acknowledged, acknowledged * logs))
end
