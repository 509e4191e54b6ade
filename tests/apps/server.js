// An HTTP server for reentr's tests, in Node with no package: serves `VERSION PID`, VERSION
// read from ./version.txt when it starts. Under `reentr --socket` it serves on the inherited
// socket (fd 3, when LISTEN_FDS is set and LISTEN_PID is its own), else it binds
// 127.0.0.1:$PORT itself. On SIGTERM it stops accepting, finishes the requests it has begun,
// then exits, as a production server does.
"use strict";
const fs = require("fs");
const http = require("http");

const version = fs.readFileSync("version.txt", "utf8").trim();
const inherited = process.env.LISTEN_FDS && process.env.LISTEN_PID === String(process.pid);

const server = http.createServer((request, response) => {
  const body = `${version} ${process.pid}`;
  response.writeHead(200, { "Content-Length": Buffer.byteLength(body) });
  response.end(body);
});
server.keepAliveTimeout = 0;

process.on("SIGTERM", () => server.close(() => process.exit(0)));
server.listen(inherited ? { fd: 3 } : { port: Number(process.env.PORT), host: "127.0.0.1" },
  () => console.log(`serving ${version}`));
