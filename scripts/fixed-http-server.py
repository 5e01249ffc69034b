"""A deterministic HTTP/1.1 file server for recording COLO twin captures.

Serves one file at /NAME with fixed headers (no Date, a fixed Server string), so a primary and a
secondary guest running it produce byte-identical application output.
usage: fixed-http-server.py ADDR PORT FILE
"""
import http.server
import os
import sys

addr, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
body = open(path, 'rb').read()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'colo-twin/1'
    sys_version = ''

    def date_time_string(self, timestamp=None):
        return 'Thu, 26 Nov 2026 00:00:00 GMT'

    def do_GET(self):
        if self.path != '/' + os.path.basename(path):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.HTTPServer((addr, port), Handler).serve_forever()
