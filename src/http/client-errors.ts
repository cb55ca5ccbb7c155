// Requests node's HTTP parser refuses before any route sees them (a broken request line, a bad byte in
// the path, headers past the size limit, a bad chunked body), and Expect headers it cannot meet: they
// still get the OCI error body every other failure gets, instead of fastify's or node's own (a client
// that reads `errors[0].message` sees why).
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { OciError } from '../oci/index.js';

function statusOf(code: string | undefined): number {
  if (code === 'HPE_HEADER_OVERFLOW') return 431;
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 408;
  return 400;
}

/** The raw response for a request the parser refused: the connection closes after it. */
export function clientErrorResponse(err: NodeJS.ErrnoException): string {
  const status = statusOf(err.code);
  const body = JSON.stringify(new OciError('UNSUPPORTED', `malformed HTTP request: ${err.code ?? err.message}`, { status }).toBody());
  return [
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Docker-Distribution-Api-Version: registry/2.0',
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}

/** For fastify's clientErrorHandler; as its default, a reset socket gets nothing. */
export function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (socket.writable) socket.end(clientErrorResponse(err));
  socket.destroySoon();
}

/** An Expect header other than 100-continue (node's 'checkExpectation'): 417 with the OCI body. */
export function answerExpectation(_request: IncomingMessage, response: ServerResponse): void {
  const body = JSON.stringify(new OciError('UNSUPPORTED', 'only "Expect: 100-continue" is supported', { status: 417 }).toBody());
  response.writeHead(417, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'docker-distribution-api-version': 'registry/2.0' });
  response.end(body);
}
