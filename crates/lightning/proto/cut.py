#!/usr/bin/env python3
"""Cuts LND's gRPC definitions down to the subset flash-lightning uses.

    python3 proto/cut.py SOURCE_DIR proto/lnd

SOURCE_DIR holds LND's `lightning.proto`, `routerrpc/router.proto` and
`invoicesrpc/invoices.proto` (LND's `lnrpc/` folder). The output keeps, per file, only the RPCs
listed in KEEP below and the messages and enums they reach (whole, with every field and LND's
comments), in LND's order, text copied unchanged: field numbers, names and packages stay LND's,
so the wire format is LND's. Run `proto/regenerate.sh` afterwards.
"""

import re
import sys
from pathlib import Path

# package -> (file, service, RPCs kept)
KEEP = {
    "lnrpc": (
        "lightning.proto",
        "Lightning",
        [
            "WalletBalance",
            "ChannelBalance",
            "ConnectPeer",
            "GetInfo",
            "ListChannels",
            "OpenChannelSync",
            "AddInvoice",
            "ListInvoices",
            "SubscribeInvoices",
        ],
    ),
    "routerrpc": ("routerrpc/router.proto", "Router", ["SendPaymentV2", "TrackPaymentV2", "EstimateRouteFee"]),
    "invoicesrpc": ("invoicesrpc/invoices.proto", "Invoices", ["CancelInvoice"]),
}

HEADER = (
    "// A subset of LND's {name}, cut by {up}../cut.py (see README.md):\n"
    "// only the RPCs flash-lightning uses and the messages they reach, copied unchanged from LND.\n"
)

IDENT = re.compile(r"\.?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def items(text, start=0, end=None):
    """Splits text[start:end] into statements: (text with leading comments, code without comments).

    A statement ends at `;` or at the `}` closing its block, at depth 0."""
    end = len(text) if end is None else end
    out, i, begin, depth, code = [], start, start, 0, []
    while i < end:
        c = text[i]
        if text.startswith("//", i):
            i = text.index("\n", i) if "\n" in text[i:end] else end
            continue
        if text.startswith("/*", i):
            i = text.index("*/", i) + 2
            continue
        if c == '"':
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            code.append(text[i : j + 1])
            i = j + 1
            continue
        code.append(c)
        i += 1
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                out.append((text[begin:i], "".join(code)))
                begin, code = i, []
        elif c == ";" and depth == 0:
            out.append((text[begin:i], "".join(code)))
            begin, code = i, []
    return out, text[begin:end]


def head(code):
    words = code.split()
    return (words[0], words[1].split("(")[0].split("{")[0]) if len(words) > 1 else (words[0] if words else "", "")


def service_at(whole):
    """Where the `service` keyword of a service statement (after its comments) starts."""
    return re.search(r"(?m)^service\s", whole).start()


def refs(code, package, defined):
    """(package, top-level name) pairs a statement's code mentions."""
    found = set()
    for token in IDENT.findall(re.sub(r'"[^"]*"', "", code)):
        parts = token.lstrip(".").split(".")
        if len(parts) > 1 and parts[0] in KEEP and (parts[0], parts[1]) in defined:
            found.add((parts[0], parts[1]))
        elif (package, parts[0]) in defined:
            found.add((package, parts[0]))
    return found


def main(source, target):
    parsed = {}
    defined = {}
    for package, (name, _, _) in KEEP.items():
        text = (source / name).read_text()
        statements, tail = items(text)
        parsed[package] = (text, statements, tail)
        for whole, code in statements:
            kind, ident = head(code)
            if kind in ("message", "enum"):
                defined[(package, ident)] = code

    # The kept RPCs, then everything they reach.
    wanted, todo, services, uses = set(), [], {}, {p: set() for p in KEEP}
    for package, (name, service, rpcs) in KEEP.items():
        text, statements, _ = parsed[package]
        for whole, code in statements:
            if head(code) == ("service", service):
                offset = text.index(whole)
                at = offset + service_at(whole)
                body_start = text.index("{", at) + 1
                body_end = offset + len(whole) - 1
                inner, inner_tail = items(text, body_start, body_end)
                kept = [(w, c) for w, c in inner if head(c)[0] == "rpc" and head(c)[1] in rpcs]
                missing = set(rpcs) - {head(c)[1] for _, c in kept}
                if missing:
                    sys.exit(f"{name}: no RPC {sorted(missing)} in service {service}")
                services[package] = text[at:body_start] + "".join(w for w, _ in kept) + inner_tail + "}"
                for _, c in kept:
                    todo.extend(refs(c, package, defined))
                    uses[package] |= {p for p, _ in refs(c, package, defined)}
    while todo:
        ref = todo.pop()
        if ref not in wanted:
            wanted.add(ref)
            todo.extend(refs(defined[ref], ref[0], defined))
            uses[ref[0]] |= {p for p, _ in refs(defined[ref], ref[0], defined)}

    for package, (name, service, _) in KEEP.items():
        text, statements, tail = parsed[package]
        out = [HEADER.format(name=f"lnrpc/{name}", up="../" * name.count("/"))]
        for whole, code in statements:
            kind, ident = head(code)
            if kind in ("message", "enum"):
                if (package, ident) in wanted:
                    out.append(whole)
            elif kind == "service":
                if ident == service:
                    out.append(whole[: service_at(whole)] + services[package])
            elif kind == "import":
                # Dropped when nothing kept here needs the imported file any more.
                imported = code.split('"')[1]
                if any(KEEP[p][0] == imported for p in uses[package]):
                    out.append(whole)
            else:
                out.append(whole)
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(out) + tail.rstrip() + "\n")
        kept = sorted(i for p, i in wanted if p == package)
        print(f"{name}: {len(kept)} messages/enums: {' '.join(kept)}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
