// The page's checks: each calls the Eliza demo on another origin and shows what came back.
// Bundled with esbuild by `cargo xtask browser`; the generated messages (eliza_pb.js) come from
// buf + protoc-gen-es. The API's address arrives in the page's query: ?api=http://HOST:PORT
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import * as grpcWeb from "grpc-web";
import {
  ElizaService,
  IntroduceRequestSchema,
  IntroduceResponseSchema,
  SayRequestSchema,
  SayResponseSchema,
} from "./gen/connectrpc/eliza/v1/eliza_pb.js";

const api = new URLSearchParams(location.search).get("api");
document.getElementById("origin").textContent = location.origin;
document.getElementById("api").textContent = api;

const results = [];

function show(name, ok, detail) {
  results.push({ name, ok, detail });
  const row = document.createElement("tr");
  for (const [text, cls] of [[name, ""], [ok ? "pass" : "FAIL", ok ? "pass" : "FAIL"], [detail, ""]]) {
    const cell = document.createElement("td");
    cell.textContent = text;
    if (cls) cell.className = cls;
    row.appendChild(cell);
  }
  document.getElementById("results").appendChild(row);
}

async function check(name, run) {
  try {
    const { ok, detail } = await run();
    show(name, ok, detail);
  } catch (error) {
    show(name, false, `threw: ${error}`);
  }
}

const happy = "I feel happy.";
const wantSay = "When do you usually feel happy?";

async function unary(transport) {
  const client = createClient(ElizaService, transport);
  const reply = await client.say({ sentence: happy });
  return { ok: reply.sentence === wantSay, detail: reply.sentence };
}

async function serverStream(transport) {
  const client = createClient(ElizaService, transport);
  const sentences = [];
  for await (const reply of client.introduce({ name: "Ada" })) {
    sentences.push(reply.sentence);
  }
  const ok = sentences.length > 1 && sentences.some((s) => s.includes("Ada"));
  return { ok, detail: `${sentences.length} sentences: ${sentences[0]} …` };
}

// The one field of google.rpc.BadRequest's first violation, read from its wire form: the page
// has no generated code for google.rpc, and needs only this.
function firstViolationField(bytes) {
  let at = 0;
  const varint = () => {
    let value = 0;
    let shift = 0;
    for (;;) {
      const byte = bytes[at++];
      value |= (byte & 0x7f) << shift;
      if (byte < 0x80) return value;
      shift += 7;
    }
  };
  if (varint() !== 0x0a) return null; // field_violations, length-delimited
  varint(); // its length
  if (varint() !== 0x0a) return null; // field, length-delimited
  const length = varint();
  return new TextDecoder().decode(bytes.subarray(at, at + length));
}

async function errorWithDetails(transport) {
  const client = createClient(ElizaService, transport);
  try {
    await client.say({ sentence: "" });
    return { ok: false, detail: "an empty sentence was answered" };
  } catch (error) {
    const err = ConnectError.from(error);
    const detail = err.details[0];
    const field = detail && "value" in detail ? firstViolationField(detail.value) : null;
    const ok = err.code === Code.InvalidArgument && detail?.type === "google.rpc.BadRequest" && field === "sentence";
    return { ok, detail: `${Code[err.code]}: ${err.rawMessage}; ${detail?.type} on "${field}"` };
  }
}

// Google's grpc-web client in its default text mode (application/grpc-web-text), with
// descriptors written by hand around protobuf-es' serializers.
const googleClient = new grpcWeb.GrpcWebClientBase({ format: "text" });
const sayMethod = new grpcWeb.MethodDescriptor(
  "/connectrpc.eliza.v1.ElizaService/Say",
  grpcWeb.MethodType.UNARY,
  Object,
  Object,
  (request) => toBinary(SayRequestSchema, request),
  (bytes) => fromBinary(SayResponseSchema, bytes),
);
const introduceMethod = new grpcWeb.MethodDescriptor(
  "/connectrpc.eliza.v1.ElizaService/Introduce",
  grpcWeb.MethodType.SERVER_STREAMING,
  Object,
  Object,
  (request) => toBinary(IntroduceRequestSchema, request),
  (bytes) => fromBinary(IntroduceResponseSchema, bytes),
);

async function googleUnary() {
  const reply = await googleClient.unaryCall(
    `${api}/connectrpc.eliza.v1.ElizaService/Say`,
    create(SayRequestSchema, { sentence: happy }),
    {},
    sayMethod,
  );
  return { ok: reply.sentence === wantSay, detail: reply.sentence };
}

function googleServerStream() {
  return new Promise((resolve) => {
    const sentences = [];
    const stream = googleClient.serverStreaming(
      `${api}/connectrpc.eliza.v1.ElizaService/Introduce`,
      create(IntroduceRequestSchema, { name: "Ada" }),
      {},
      introduceMethod,
    );
    stream.on("data", (reply) => sentences.push(reply.sentence));
    stream.on("error", (error) => resolve({ ok: false, detail: `error ${error.code}: ${error.message}` }));
    stream.on("end", () =>
      resolve({
        ok: sentences.length > 1 && sentences.some((s) => s.includes("Ada")),
        detail: `${sentences.length} sentences: ${sentences[0]} …`,
      }),
    );
  });
}

const connectJson = createConnectTransport({ baseUrl: api, useBinaryFormat: false });
const connectProto = createConnectTransport({ baseUrl: api, useBinaryFormat: true });
const connectGet = createConnectTransport({ baseUrl: api, useHttpGet: true });
const grpcWebProto = createGrpcWebTransport({ baseUrl: api });

await check("connect-web, Connect JSON, unary", () => unary(connectJson));
await check("connect-web, Connect binary, unary", () => unary(connectProto));
await check("connect-web, Connect GET, unary", () => unary(connectGet));
await check("connect-web, Connect JSON, server stream", () => serverStream(connectJson));
await check("connect-web, gRPC-Web binary, unary", () => unary(grpcWebProto));
await check("connect-web, gRPC-Web binary, server stream", () => serverStream(grpcWebProto));
await check("connect-web, Connect JSON, error with details", () => errorWithDetails(connectJson));
await check("connect-web, gRPC-Web, error with details", () => errorWithDetails(grpcWebProto));
await check("grpc-web (Google), text mode, unary", googleUnary);
await check("grpc-web (Google), text mode, server stream", googleServerStream);

const failed = results.filter((r) => !r.ok).length;
document.getElementById("status").textContent = failed ? `${failed} failed` : "all passed";
window.__results = results;
