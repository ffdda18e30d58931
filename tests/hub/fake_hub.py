#!/usr/bin/env python3
"""A stand-in for the Hugging Face Hub on 127.0.0.1, for the tests (nothing here reaches the internet).

It speaks the part of the Hub's protocol that downloads use:
  HEAD/GET /{org}/{name}/resolve/{revision}/{file}
    large files (*.safetensors, as LFS): 302 to the "CDN" on a second port, with X-Repo-Commit,
    X-Linked-Etag (the SHA-256) and X-Linked-Size; small files: 200 with ETag and Content-Length.
  GET /cdn/{sha256} on the CDN port, with Range.
Repositories are the folders ROOT/{org}/{name}; their commit is the SHA-1 of the name. A repository
whose name contains "gated" wants "Authorization: Bearer good-token". Every request is logged as a
JSON line. --mode changes behaviour: cut-once (the first full body of each blob stops half-way),
corrupt (the CDN flips a byte), captive (every answer an HTML page without the Hub's headers),
ignore-range (the CDN answers 200 with the whole body to a Range request), slow (bodies trickle).
The server stops by itself after --lifetime seconds.
"""
import argparse
import hashlib
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_SUFFIXES = (".safetensors", ".bin")


class Hub:
    def __init__(self, root, mode, log):
        self.root = os.path.abspath(root)
        self.mode = mode
        self.log_path = log
        self.lock = threading.Lock()
        self.cut_done = set()
        self.cdn_port = 0
        self.blobs = {}  # sha256 -> path
        self.delay = 0.01  # seconds per 64 KiB in slow mode

    def log(self, entry):
        if self.log_path:
            with self.lock, open(self.log_path, "a") as out:
                out.write(json.dumps(entry) + "\n")

    def repository(self, org, name):
        folder = os.path.join(self.root, org, name)
        return folder if os.path.isdir(folder) else None

    def lfs_hash(self, path):
        digest = hashlib.sha256()
        with open(path, "rb") as data:
            for chunk in iter(lambda: data.read(1 << 20), b""):
                digest.update(chunk)
        sha = digest.hexdigest()
        self.blobs[sha] = path
        return sha


def git_blob_hash(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub = None  # set in main

    def log_message(self, *args):
        pass

    def answer(self, status, headers=None, body=b""):
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def hub_error(self, status, code, message):
        self.answer(status, {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"},
                    json.dumps({"error": message}).encode())

    def handle_request(self):
        hub = self.hub
        url = urllib.parse.urlsplit(self.path)  # absolute when we are a proxy
        path = urllib.parse.unquote(url.path)
        hub.log({"port": self.server.server_address[1], "method": self.command, "path": path,
                 "host": self.headers.get("Host", ""), "range": self.headers.get("Range", ""),
                 "authorization": self.headers.get("Authorization", ""), "proxied": bool(url.netloc)})
        if hub.mode == "captive":
            self.answer(200, {"Content-Type": "text/html"}, b"<html><body>Please sign in to the Wi-Fi</body></html>")
            return
        if path.startswith("/cdn/"):
            self.serve_blob(path[len("/cdn/"):])
            return
        parts = path.strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            self.hub_error(404, "EntryNotFound", "not a resolve URL")
            return
        org, name, _, revision = parts[:4]
        file = "/".join(parts[4:])
        folder = hub.repository(org, name)
        if folder is None:
            self.hub_error(401, "RepoNotFound", "Repository not found")
            return
        if "gated" in name and self.headers.get("Authorization") != "Bearer good-token":
            self.hub_error(401, "GatedRepo", "Access to model %s/%s is restricted" % (org, name))
            return
        commit = hashlib.sha1(("%s/%s" % (org, name)).encode()).hexdigest()
        if revision not in ("main", commit):
            self.hub_error(404, "RevisionNotFound", "Invalid rev id: " + revision)
            return
        target = os.path.join(folder, file)
        if not os.path.isfile(target):
            self.answer(404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit,
                              "X-Error-Message": "Entry not found"})
            return
        size = os.path.getsize(target)
        if target.endswith(LFS_SUFFIXES):
            sha = hub.lfs_hash(target)
            location = "http://127.0.0.1:%d/cdn/%s" % (hub.cdn_port, sha)
            self.answer(302, {"Location": location, "X-Repo-Commit": commit, "X-Linked-Etag": '"%s"' % sha,
                              "X-Linked-Size": str(size), "ETag": '"%s"' % git_blob_hash(b"pointer " + sha.encode())})
            return
        with open(target, "rb") as data:
            body = data.read()
        self.answer(200, {"X-Repo-Commit": commit, "ETag": '"%s"' % git_blob_hash(body),
                          "Content-Type": "application/octet-stream"}, body)

    def serve_blob(self, sha):
        hub = self.hub
        path = hub.blobs.get(sha)
        if path is None:
            self.answer(404)
            return
        with open(path, "rb") as data:
            body = data.read()
        if hub.mode == "corrupt":
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        start = 0
        requested = self.headers.get("Range", "")
        if requested.startswith("bytes=") and hub.mode != "ignore-range":
            start = int(requested[len("bytes="):].split("-")[0])
            if start >= len(body):
                self.answer(416, {"Content-Range": "bytes */%d" % len(body)})
                return
        status = 206 if start else 200
        headers = {"Content-Length": str(len(body) - start), "Accept-Ranges": "bytes"}
        if status == 206:
            headers["Content-Range"] = "bytes %d-%d/%d" % (start, len(body) - 1, len(body))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        remaining = body[start:]
        with hub.lock:
            cut = hub.mode == "cut-once" and start == 0 and sha not in hub.cut_done
            if cut:
                hub.cut_done.add(sha)
        if cut:
            self.wfile.write(remaining[:len(remaining) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        chunk = 1 << 16
        for offset in range(0, len(remaining), chunk):
            self.wfile.write(remaining[offset:offset + chunk])
            if hub.mode == "slow":
                self.wfile.flush()
                time.sleep(hub.delay)

    do_GET = handle_request
    do_HEAD = handle_request


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that cancels or times out closes its socket: expected here, not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--mode", default="normal",
                        choices=["normal", "cut-once", "corrupt", "captive", "ignore-range", "slow"])
    parser.add_argument("--log", default="")
    parser.add_argument("--lifetime", type=float, default=120.0)
    parser.add_argument("--delay", type=float, default=0.01, help="slow mode: seconds per 64 KiB")
    args = parser.parse_args()

    Handler.hub = Hub(args.root, args.mode, args.log)
    Handler.hub.delay = args.delay
    servers = [QuietServer(("127.0.0.1", 0), Handler) for _ in range(2)]
    Handler.hub.cdn_port = servers[1].server_address[1]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("hub %d cdn %d" % (servers[0].server_address[1], servers[1].server_address[1]), flush=True)
    # Bounded: gone after its lifetime, or as soon as the test that started it closes our stdin.
    stopper = threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True)
    stopper.start()
    time.sleep(args.lifetime)
    os._exit(0)


if __name__ == "__main__":
    main()
