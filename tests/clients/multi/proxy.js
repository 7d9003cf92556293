// A round-robin reverse proxy for the two-instance test: every request goes to the next
// upstream in turn, whatever came before on its connection (no stickiness). Bodies stream
// both ways; a client that drops mid-request drops the upstream request too, so the server
// sees the cut chunk. Each answer names the instance in `X-Foodcheck-Upstream`, and
// `GET /__proxy/log` returns [{method, path, upstream, status}] of every request so far.
//
//   node proxy.js PORT UPSTREAM_URL...
const http = require('node:http')

const [port, ...upstreams] = process.argv.slice(2)
if (!port || upstreams.length < 2) {
  console.error('usage: node proxy.js PORT UPSTREAM_URL UPSTREAM_URL...')
  process.exit(2)
}
const targets = upstreams.map((u) => new URL(u))
const agent = new http.Agent({ keepAlive: true })
const log = []
let next = 0

http
  .createServer((req, res) => {
    if (req.url === '/__proxy/log') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(log))
      return
    }
    const i = next
    next = (next + 1) % targets.length
    const entry = { method: req.method, path: req.url, upstream: i, status: null }
    log.push(entry)
    const t = targets[i]
    const up = http.request(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers, agent },
      (r) => {
        entry.status = r.statusCode
        res.writeHead(r.statusCode, { ...r.headers, 'x-foodcheck-upstream': String(i) })
        r.pipe(res)
      },
    )
    up.on('error', (e) => {
      entry.status = entry.status ?? 502
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ error: { code: 'bad_gateway', message: String(e) } }))
      } else {
        res.destroy()
      }
    })
    // The client went away before its body was complete: so does the upstream request.
    req.on('aborted', () => up.destroy())
    res.on('close', () => {
      if (!res.writableFinished) up.destroy()
    })
    req.pipe(up)
  })
  .listen(Number(port), '127.0.0.1', () => console.log(`proxy on ${port} -> ${upstreams.join(' ')}`))
