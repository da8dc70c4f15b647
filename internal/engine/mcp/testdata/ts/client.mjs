// Drives Gatehouse's MCP tools with the official TypeScript SDK client, for
// internal/engine/mcp's TestTypeScriptClient. It prints one JSON object per
// line on stdout ({"step": ..., ...}); the Go test makes the assertions and
// answers "approve" waits on stdin (it approves as a reviewer, then writes a
// line), so a human step sits in the middle of the agent's flow.
//
// Environment: GATEHOUSE_URL (the gateway's API URL), GATEHOUSE_TOKEN,
// TRANSPORT ("http" or "stdio"), GATEHOUSE_BIN (the gatehouse binary, for
// stdio).
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const { GATEHOUSE_URL: url, GATEHOUSE_TOKEN: token, TRANSPORT: transportName, GATEHOUSE_BIN: bin } = process.env;

function emit(step, value) {
  process.stdout.write(JSON.stringify({ step, ...value }) + '\n');
}

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function waitForGo() {
  const { value, done } = await lines.next();
  if (done) throw new Error('stdin closed');
  return value;
}

let transport;
if (transportName === 'stdio') {
  transport = new StdioClientTransport({
    command: bin,
    args: ['mcp', '--gateway', url],
    env: { ...process.env, GATEHOUSE_TOKEN: token },
    stderr: 'inherit',
  });
} else {
  transport = new StreamableHTTPClientTransport(new URL(url + '/mcp'), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
}

const client = new Client({ name: 'gatehouse-ts-test', version: '7.8.9' });
await client.connect(transport);
emit('connected', { server: client.getServerVersion() });

const tools = await client.listTools();
emit('tools', { tools: tools.tools.map((t) => ({ name: t.name, inputSchema: t.inputSchema })) });

const call = async (step, name, args) => {
  const result = await client.callTool({ name, arguments: args });
  emit(step, { result });
  return result;
};

await call('list_connections', 'list_connections', {});
await call('describe', 'describe', { connection: 'pg', table: 'users' });
await call('allowed', 'query', { connection: 'pg', sql: 'SELECT id, total, paid FROM orders ORDER BY id' });
await call('masked', 'query', { connection: 'pg', sql: 'SELECT id, name, email, card FROM users WHERE id = 7' });
await call('denied', 'query', { connection: 'pg', sql: 'DELETE FROM users WHERE id = 1' });

// The approval flow: held, reported pending, approved by a human (the Go
// test), then the result through approval_status.
const held = await call('held', 'query', {
  connection: 'pg', sql: "UPDATE users SET note = 'approved via ts' WHERE id = 5", wait_seconds: 1,
});
const approvalId = held.structuredContent?.approval_id;
if (approvalId) {
  await call('status_pending', 'approval_status', { approval_id: approvalId });
  emit('await_review', { approval_id: approvalId });
  await waitForGo();
  await call('status_done', 'approval_status', { approval_id: approvalId, wait_seconds: 20 });
}

await client.close();
emit('done', {});
process.exit(0);
