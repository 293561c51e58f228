#!/usr/bin/env node
// The job's end of the deployer's gateway. The job's container has no network: this
// listens on the container's own loopback (127.0.0.1:8545, where forge and Hardhat
// find their chain) and hands each request's body to the worker over standard
// output, one JSON line each ({"id", "body"}); the worker's gateway answers on
// standard input ({"id", "body"}). When the worker closes standard input, it exits.
// The relay serves the jobs of its container in turn: the worker sends a fence
// ({"fence": n}) as a job starts, and the relay refuses what is still pending and
// passes the fence back in line with the requests, so that the worker knows which
// requests were sent before it (an earlier job's) and which after.
'use strict';
const http = require('http');

const port = Number(process.argv[2]) || 8545;
const maxBody = 16 * 1024 * 1024;
const pending = new Map();
let next = 0;
const send = (frame) => process.stdout.write(JSON.stringify(frame) + '\n');

const server = http.createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > maxBody) {
      res.writeHead(413);
      res.end();
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on('end', () => {
    if (res.writableEnded) return;
    const id = ++next;
    pending.set(id, res);
    send({ id, body: Buffer.concat(chunks).toString('utf8') });
  });
});
server.keepAliveTimeout = 60000;

let buf = '';
const onInput = (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    let frame;
    try {
      frame = JSON.parse(line);
    } catch (e) {
      continue;
    }
    if (frame.fence) {
      for (const res of pending.values()) {
        res.writeHead(503);
        res.end();
      }
      pending.clear();
      send({ fence: frame.fence });
      continue;
    }
    const res = pending.get(frame.id);
    if (!res) continue;
    pending.delete(frame.id);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(frame.body);
  }
};

// Input is read once the relay listens: its first frame out is always ready.
server.listen(port, '127.0.0.1', () => {
  send({ ready: true });
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', onInput);
  process.stdin.on('end', () => process.exit(0));
});
