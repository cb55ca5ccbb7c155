// io: byte plumbing shared by the layers that move blobs. A file range that can pump itself into a
// socket without passing through a stream (the fast path for HTTP clients and peers), and pooled
// buffers for pumping anything else.
// It knows bytes, files and sockets only: it must never import layerd's own modules.

export { FileRangeStream, isPumpable, type Pumpable } from './file-range-stream.js';
export { pumpInto } from './serve-buffers.js';
