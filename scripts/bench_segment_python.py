"""Segment's official Python library sending the same messages to the same sink, timed.

Usage: bench_segment_python.py HOST WRITE_KEY MESSAGES_JSON [ROUNDS]
Prints {"seconds": [per round], "messages": …, "errors": …} as JSON. The messages are converted
to the library's call arguments before the clock starts; the clock stops when flush()
returns, that is when every batch has been delivered.
"""
import datetime
import json
import sys
import time

from segment.analytics import Client


def main():
    host, write_key, path = sys.argv[1:4]
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    with open(path) as f:
        messages = json.load(f)
    calls = []
    for m in messages:
        ts = datetime.datetime.fromisoformat(m["timestamp"].replace("Z", "+00:00"))
        args = dict(
            user_id=m.get("userId"),
            anonymous_id=m.get("anonymousId"),
            properties=m["properties"],
            context=m["context"],
            timestamp=ts,
            integrations=m["integrations"],
            message_id=m["messageId"],
        )
        if m["type"] == "track":
            calls.append(("track", dict(args, event=m["event"])))
        else:
            calls.append(("page", args))

    errors = []
    # The library's most generous settings: the largest batches it will send, a queue
    # that holds the whole run, and no artificial wait between uploads.
    client = Client(
        write_key,
        host=host,
        upload_size=2500,
        upload_interval=0.01,
        max_queue_size=len(calls) + 1,
        on_error=lambda e, batch: errors.append(str(e)),
    )
    seconds = []
    for _ in range(rounds):
        start = time.perf_counter()
        for method, args in calls:
            getattr(client, method)(**args)
        client.flush()
        seconds.append(time.perf_counter() - start)
    client.shutdown()
    print(json.dumps({"seconds": seconds, "messages": len(calls), "errors": len(errors)}))


if __name__ == "__main__":
    main()
