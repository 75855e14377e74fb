// The Probot peer of the ingest benchmark (bench/ingest.py): Probot as `probot run` serves an
// app in production (its Server; pino-http logs one JSON line per request, like our
// receiver's INFO line; JSON logs as with LOG_FORMAT=json),
// with an app that LPUSHes every verified delivery to a Redis list. @octokit/webhooks checks
// X-Hub-Signature-256 before any handler runs, answers 400 for a bad or missing signature,
// and 200 only once the handler (the LPUSH) has finished.
//
// Usage: node app.js --host 127.0.0.1 --port 3002
// Environment: WEBHOOK_SECRET (required), REDIS_URL (redis://127.0.0.1:6379/10),
// PROBOT_QUEUE_KEY (the list, "idpbench:probot"), LOG_LEVEL ("info", as probot run).
import { generateKeyPairSync } from "node:crypto";
import { parseArgs } from "node:util";
import pino from "pino";
import { Probot, Server } from "probot";
import { createClient } from "redis";

const { values } = parseArgs({
  options: { host: { type: "string", default: "127.0.0.1" }, port: { type: "string", default: "3002" } },
});
const secret = process.env.WEBHOOK_SECRET;
if (!secret) {
  console.error("bench/probot/app.js: set WEBHOOK_SECRET");
  process.exit(2);
}
const key = process.env.PROBOT_QUEUE_KEY || "idpbench:probot";
const redis = createClient({ url: process.env.REDIS_URL || "redis://127.0.0.1:6379/10" });
redis.on("error", (error) => console.error(`redis: ${error.message}`));
await redis.connect();

// Probot wants App credentials; receiving webhooks never uses them (no GitHub call here).
const { privateKey } = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  privateKeyEncoding: { type: "pkcs1", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
});

// Probot's own logger in JSON mode, to stdout (pino, the version Probot depends on).
const log = pino({ name: "probot", level: process.env.LOG_LEVEL || "info" }, pino.destination(1));
const server = new Server({
  log,
  host: values.host,
  port: Number(values.port),
  webhookPath: "/api/github/webhooks", // the App's path (app.web.WEBHOOK_PATH)
  Probot: Probot.defaults({ appId: 1, privateKey, secret }),
});

await server.load((app) => {
  app.onAny(async (context) => {
    await redis.lPush(key, JSON.stringify({ id: context.id, name: context.name, payload: context.payload }));
  });
});
await server.start();

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, async () => {
    await server.stop();
    await redis.quit();
    process.exit(0);
  });
}
