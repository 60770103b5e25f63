// The WebSocket peer for python -m bench.ws --peer aedes: aedes 1.x (Node.js) with MQTT over
// TCP and over WebSocket (aedes-server-factory, on the ws package), as its README shows.
//   node bench/ws/aedes_peer.mjs TCP_PORT WS_PORT    (modules from $AEDES_MODULES, bench/ws/run.sh installs them)
import net from 'node:net'
import path from 'node:path'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'

const modules = process.env.AEDES_MODULES
const [tcpPort, wsPort] = process.argv.slice(2).map(Number)
const { Aedes } = await import(pathToFileURL(path.join(modules, 'aedes', 'aedes.js')).href)
const { createServer } = createRequire(path.join(modules, 'x.js'))('aedes-server-factory')
const aedes = await Aedes.createBroker()
net.createServer(aedes.handle).listen(tcpPort, '127.0.0.1')
createServer(aedes, { ws: true }).listen(wsPort, '127.0.0.1')
