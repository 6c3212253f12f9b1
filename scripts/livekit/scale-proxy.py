"""A round-robin TCP balancer for the scale-out test (scale-test.sh): every new connection goes to
the next admin replica in turn, the way a cloud load balancer or a Kubernetes Service spreads
connections. The test's clients open one connection per request (urllib), so their requests
alternate between replicas; the agents' internal-API clients keep connections alive and so stick
to a replica per connection, as behind a real balancer. A replica that refuses the connection is
skipped (its health check failing, as it would be taken out of the pool).

A request carrying `X-Balance-Key: K` takes the next replica in K's own turn instead: the test's
chat practice and partner flow each name themselves, so their own requests strictly alternate
whatever else (the agents, the 20 calls' token requests) goes through meanwhile. With one shared
turn, a flow of five requests all landed on one replica by chance in about one run in sixteen.

Each connection is logged as one line `<backend port> <first request line>` in --log, which the
test reads to prove that the requests alternated. Standard library only.
usage: scale-proxy.py --listen PORT --log FILE BACKEND_PORT...
"""

import argparse
import asyncio
import itertools


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except (ConnectionError, OSError):
            pass


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--listen", type=int, required=True)
    p.add_argument("--log", required=True)
    p.add_argument("backends", type=int, nargs="+")
    args = p.parse_args()
    turns = {b"": itertools.cycle(args.backends)}
    log = open(args.log, "a", buffering=1)

    def balance_key(first: bytes) -> bytes:
        head = first.split(b"\r\n\r\n", 1)[0]
        for header in head.split(b"\r\n")[1:]:
            name, _, value = header.partition(b":")
            if name.strip().lower() == b"x-balance-key":
                return value.strip()
        return b""

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        first = await client_r.read(65536)
        key = balance_key(first)
        turn = turns.setdefault(key, itertools.cycle(args.backends))
        for _ in args.backends:
            port = next(turn)
            try:
                backend_r, backend_w = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                continue  # down: the next replica takes it
        else:
            client_w.close()
            return
        line = first.split(b"\r\n", 1)[0].decode("latin-1")
        log.write(f"{port} {line}\n")
        backend_w.write(first)
        await asyncio.gather(pipe(client_r, backend_w), pipe(backend_r, client_w))

    server = await asyncio.start_server(handle, "127.0.0.1", args.listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
