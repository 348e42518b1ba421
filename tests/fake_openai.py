"""A scripted OpenAI-compatible endpoint on loopback, for unit tests of the client logic only.

The real LLM path is tested against the real local llama.cpp server (test_llm_local.py).
"""

from __future__ import annotations

import http.server
import json
import threading


class FakeOpenAI:
    """Answers /v1/chat/completions from a list of scripted replies; records every request.

    A reply is a string (the message content), or ("status", code[, message]) to fail with an HTTP code,
    or a callable(request_json) -> reply.
    """

    def __init__(self, replies):
        self.replies = list(replies)
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                fake.headers.append(dict(self.headers))
                reply = fake.replies.pop(0) if fake.replies else "{}"
                if callable(reply):
                    reply = reply(body)
                if isinstance(reply, tuple):
                    self.send_response(reply[1])
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    message = reply[2] if len(reply) > 2 else "rejected by the fake"
                    self.wfile.write(json.dumps({"error": {"message": message}}).encode())
                    return
                data = {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": reply}}
                    ],
                    "usage": {"prompt_tokens": 111, "completion_tokens": 22, "total_tokens": 133},
                }
                payload = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
