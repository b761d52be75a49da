// connect-node (connect-es v2) against the Eliza demo: every protocol it speaks, over
// HTTP/1.1 and HTTP/2, cleartext and TLS, with unary Say, server-streaming Introduce and (where
// the transport allows it) bidirectional Converse.
//
// Run by `cargo xtask peers`, which installs the packages from package.json and generates
// `gen/connectrpc/eliza/v1/eliza_pb.js` (protoc-gen-es, target=js) into a cache directory,
// copies this file beside them and runs:
//
//   node connect-node.mjs --h2c http://127.0.0.1:PORT --tls https://localhost:PORT --ca ca.pem
//
// Prints one `PASS <check>` or `FAIL <check>: <why>` line per check and exits 1 on any failure.

import { subscribe } from "node:diagnostics_channel";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";

import {
  ConverseRequestSchema,
  ElizaService,
} from "./gen/connectrpc/eliza/v1/eliza_pb.js";

const { values: args } = parseArgs({
  options: {
    h2c: { type: "string" },
    tls: { type: "string" },
    ca: { type: "string" },
  },
});
if (!args.h2c || !args.tls || !args.ca) {
  console.error("usage: node connect-node.mjs --h2c URL --tls URL --ca CA.pem");
  process.exit(2);
}
const ca = readFileSync(args.ca);

const SAY = ["I feel happy.", "When do you usually feel happy?"];
const NAME = "Ada";
const INTRODUCTION = [
  "Hi Ada. I'm Eliza.",
  "Before we begin, let me tell you something about myself.",
  "I was created by Joseph Weizenbaum at MIT in the 1960s.",
  "I listen, and I ask questions. How are you feeling today?",
];
const CONVERSATION = [
  ["Hello", "Hi there... how are you today?"],
  ["I feel happy.", "When do you usually feel happy?"],
  ["Goodbye", "Goodbye. It was nice talking to you."],
];
const TIMEOUT_MS = 10_000;

function assertEqual(what, actual, expected) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) {
    throw new Error(`${what}: got ${a}, want ${e}`);
  }
}

// The method of the last HTTP/1.1 request node sent, so the GET check proves it really sent a
// GET (interceptors see the request before the transport turns it into one).
let lastHttp1Method;
subscribe("http.client.request.start", ({ request }) => {
  lastHttp1Method = request.method;
});

async function say(client, expectedHttp1Method) {
  lastHttp1Method = undefined;
  const response = await client.say({ sentence: SAY[0] }, { timeoutMs: TIMEOUT_MS });
  assertEqual("Say sentence", response.sentence, SAY[1]);
  assertEqual("Say HTTP/1.1 method", lastHttp1Method, expectedHttp1Method);
}

async function introduce(client) {
  const sentences = [];
  for await (const response of client.introduce({ name: NAME }, { timeoutMs: TIMEOUT_MS })) {
    sentences.push(response.sentence);
  }
  assertEqual("Introduce sentences", sentences, INTRODUCTION);
}

async function converse(client) {
  async function* requests() {
    for (const [sentence] of CONVERSATION) {
      yield create(ConverseRequestSchema, { sentence });
    }
  }
  const replies = [];
  for await (const response of client.converse(requests(), { timeoutMs: TIMEOUT_MS })) {
    replies.push(response.sentence);
  }
  assertEqual(
    "Converse replies",
    replies,
    CONVERSATION.map(([, reply]) => reply),
  );
}

// [label, transport factory, options, RPCs]
const tlsOptions = { nodeOptions: { ca } };
const matrix = [
  ["connect json http/1.1", createConnectTransport, { baseUrl: args.h2c, httpVersion: "1.1" }, [say, introduce]],
  [
    "connect proto http/1.1 GET",
    createConnectTransport,
    { baseUrl: args.h2c, httpVersion: "1.1", useBinaryFormat: true, useHttpGet: true },
    [say],
  ],
  [
    "connect proto h2c",
    createConnectTransport,
    { baseUrl: args.h2c, httpVersion: "2", useBinaryFormat: true },
    [say, introduce, converse],
  ],
  ["grpc h2c", createGrpcTransport, { baseUrl: args.h2c }, [say, introduce, converse]],
  ["grpc-web http/1.1", createGrpcWebTransport, { baseUrl: args.h2c, httpVersion: "1.1" }, [say, introduce]],
  ["grpc-web h2c", createGrpcWebTransport, { baseUrl: args.h2c, httpVersion: "2" }, [say, introduce]],
  [
    "connect json TLS http/1.1",
    createConnectTransport,
    { baseUrl: args.tls, httpVersion: "1.1", ...tlsOptions },
    [say, introduce],
  ],
  [
    "connect proto TLS h2",
    createConnectTransport,
    { baseUrl: args.tls, httpVersion: "2", useBinaryFormat: true, ...tlsOptions },
    [say, introduce, converse],
  ],
  ["grpc TLS h2", createGrpcTransport, { baseUrl: args.tls, ...tlsOptions }, [say, introduce, converse]],
  [
    "grpc-web TLS http/1.1",
    createGrpcWebTransport,
    { baseUrl: args.tls, httpVersion: "1.1", ...tlsOptions },
    [say, introduce],
  ],
];

let failed = 0;
for (const [label, factory, options, rpcs] of matrix) {
  // gRPC always runs over HTTP/2; the other two need the version spelled out.
  const transport = factory({
    ...(factory === createGrpcTransport ? { httpVersion: "2" } : {}),
    ...options,
  });
  const client = createClient(ElizaService, transport);
  // HTTP/2 requests do not pass through node's http client, so none is seen there.
  const expectedMethod = options.httpVersion !== "1.1" ? undefined : options.useHttpGet ? "GET" : "POST";
  for (const rpc of rpcs) {
    const check = `connect-node ${label} ${rpc.name[0].toUpperCase()}${rpc.name.slice(1)}`;
    try {
      await rpc(client, expectedMethod);
      console.log(`PASS ${check}`);
    } catch (error) {
      failed++;
      const why = String(error?.stack ?? error).split("\n").slice(0, 4).join(" | ");
      console.log(`FAIL ${check}: ${why}`);
    }
  }
}
process.exit(failed === 0 ? 0 : 1);
