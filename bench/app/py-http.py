#!/usr/bin/env python3
"""The nodelay row's worker: Python's http.server, keep-alive (HTTP/1.1), on the socket at fd 3
wrapped as a plain socket. It never sets TCP_NODELAY and writes the headers and the body in
two send() calls, as servers that take their socket by fd without knowing its family do: the
body waits for the client's delayed ACK under Nagle unless the listener has TCP_NODELAY,
which accepted connections inherit."""
import http.server, os, socket, socketserver

BODY = b"Hello world\n"

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()  # one send() for the headers
        self.wfile.write(BODY)  # one for the body

    def log_message(self, *args):
        pass

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

server = Server(("", 0), Handler, bind_and_activate=False)
server.socket.close()
server.socket = socket.socket(fileno=3)
addr = os.environ.get("NOTIFY_SOCKET")
if addr:
    n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    n.sendto(b"READY=1", "\0" + addr[1:] if addr.startswith("@") else addr)
server.serve_forever()
