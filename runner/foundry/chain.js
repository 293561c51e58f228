#!/usr/bin/env node
// A managed chain's front: anvil listens on the container's loopback, and this serves
// the chain's published port. Users (the rpc_url a job reports) get the public
// methods only (DEPLOYER_PUBLIC_METHODS: reads and raw transactions, the gateway's
// list), each element of a batch checked on its own; anvil's admin methods
// (anvil_setCode, evm_revert, anvil_nodeInfo with a fork's upstream URL, …) answer an
// error. The workers, which fund senders and trace transactions, send the chain's
// admin token (DEPLOYER_ADMIN_TOKEN) and reach anvil as it is. Anvil is this
// process's child: when it ends, the container ends.
'use strict';
const http = require('http');
const crypto = require('crypto');
const { spawn } = require('child_process');

const listen = Number(process.env.DEPLOYER_LISTEN_PORT) || 8545;
const anvilPort = Number(process.env.DEPLOYER_ANVIL_PORT) || 8546;
const token = Buffer.from(process.env.DEPLOYER_ADMIN_TOKEN || '');
const allowed = new Set((process.env.DEPLOYER_PUBLIC_METHODS || '').split(',').filter(Boolean));
const maxBody = 16 * 1024 * 1024;

// A fork's upstream URL may hold a key: it came in the environment, not in the
// container's command, which the engine shows to anyone who lists it.
const fork = process.env.DEPLOYER_FORK_URL ? ['--fork-url', process.env.DEPLOYER_FORK_URL] : [];
const anvil = spawn('anvil', ['--host', '127.0.0.1', '--port', String(anvilPort), ...fork, ...process.argv.slice(2)],
  { stdio: 'inherit' });
anvil.on('exit', (code) => process.exit(code === null ? 1 : code));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => anvil.kill(sig));

function isAdmin(req) {
  const got = Buffer.from(String(req.headers['x-deployer-admin'] || ''));
  return token.length > 0 && got.length === token.length && crypto.timingSafeEqual(got, token);
}

function forward(body) {
  return new Promise((resolve) => {
    const up = http.request({ host: '127.0.0.1', port: anvilPort, method: 'POST', path: '/',
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (r) => {
      const chunks = [];
      r.on('data', (c) => chunks.push(c));
      r.on('end', () => resolve({ status: r.statusCode, body: Buffer.concat(chunks) }));
    });
    up.on('error', () => resolve({ status: 502, body: Buffer.from('{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"chain not ready"}}') }));
    up.end(body);
  });
}

const refuse = (id, method) => ({ jsonrpc: '2.0', id: id === undefined ? null : id,
  error: { code: -32601, message: 'method ' + String(method).slice(0, 64) + ' is not available on this RPC' } });

async function filtered(body) {
  let msg;
  try {
    msg = JSON.parse(body);
  } catch (e) {
    return { status: 200, body: JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'not JSON' } }) };
  }
  const one = async (m) => {
    if (!m || typeof m !== 'object' || !allowed.has(m.method)) return refuse(m && m.id, m && m.method);
    const r = await forward(JSON.stringify(m));
    try {
      return JSON.parse(r.body);
    } catch (e) {
      return { jsonrpc: '2.0', id: m.id, error: { code: -32000, message: 'chain not ready' } };
    }
  };
  if (Array.isArray(msg)) {
    if (msg.length === 0 || msg.length > 256) {
      return { status: 200, body: JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'a batch holds 1 to 256 requests' } }) };
    }
    const out = [];
    for (const m of msg) out.push(await one(m));
    return { status: 200, body: JSON.stringify(out) };
  }
  return { status: 200, body: JSON.stringify(await one(msg)) };
}

http.createServer((req, res) => {
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
  req.on('end', async () => {
    if (res.writableEnded) return;
    const body = Buffer.concat(chunks).toString('utf8');
    const out = isAdmin(req) ? await forward(body) : await filtered(body);
    res.writeHead(out.status, { 'Content-Type': 'application/json' });
    res.end(out.body);
  });
}).listen(listen, '0.0.0.0');
