#!/usr/bin/env python3
"""PyTorch twin of `cucn bench`: the same network, protocol and report fields, for comparison.

The network is scripts/gen_fixtures.py's `Cucn` (ResNet-18 + CBAM + RUL head, fresh weights) on
random normalized images. Training step: forward with mixing, add-up loss with class weights,
backward, Adam (two groups, L2 weight decay 1e-4, eps 1e-8) -- what `cucn train` does. Inference:
eval mode under `torch.inference_mode()`, logits, softmax and uncertainty. Each timing is the median
of --steps runs after --warmup untimed ones (CUDA is synchronized before the clock stops).
Memory: the process's resident high-water mark (VmHWM, Linux), reset through /proc/self/clear_refs
before each phase as `cucn bench` does; on CUDA also the peak allocated GPU memory.

Usage:
    python3 scripts/bench_torch.py [--size 112 --size 224] [--batch 32] [--steps 5] [--warmup 2]
        [--threads N] [--device cpu|cuda] [--json] [--compare CUCN.json] [--profile PX]
        [--rounds N [--cucn target/release/cucn]]

--compare takes the output of `cucn bench --json` and prints a Markdown table of both and their
ratio (cucn / PyTorch). --rounds N runs the cucn binary's `bench --json` and this script's
measurement in turn N times, with the same settings, and prints each round's ratios and their
median (this machine's speed drifts too much for one pair of runs). --profile prints PyTorch's
per-operator times of one training step and one batched inference at that size.

Needs: torch (and safetensors, which gen_fixtures.py imports).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_fixtures import Cucn  # noqa: E402  (the reference twin of src/model/)

WIDTHS = [64, 128, 256, 512]
CLASSES = 7


def vm_hwm_kib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class PeakMemory:
    """Per-phase and overall resident high-water marks, as src/bench.rs keeps them."""

    def __init__(self):
        self.overall = vm_hwm_kib()
        self.reset = False

    def note(self, kib):
        if kib is not None:
            self.overall = max(self.overall or 0, kib)

    def start_phase(self, device):
        self.note(vm_hwm_kib())
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.reset = True
        except OSError:
            self.reset = False
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

    def end_phase(self, device):
        kib = vm_hwm_kib()
        self.note(kib)
        out = {"rss": kib / 1024 if (self.reset and kib is not None) else None}
        if device.type == "cuda":
            out["gpu"] = torch.cuda.max_memory_allocated(device) / 2**20
        return out


def timing(batch, seconds):
    median = statistics.median(seconds)
    return {
        "batch": batch,
        "median_ms": median * 1e3,
        "min_ms": min(seconds) * 1e3,
        "max_ms": max(seconds) * 1e3,
        "images_per_second": batch / median,
    }


def time_runs(args, device, step):
    seconds = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= args.warmup:
            seconds.append(time.perf_counter() - start)
    return seconds


def make_optimizer(model):
    """RUL's Adam: the classifier has its own (larger) learning rate; L2 added to the gradient."""
    fc = set(id(p) for p in model.fc.parameters())
    rest = [p for p in model.parameters() if id(p) not in fc]
    return torch.optim.Adam(
        [{"params": rest, "lr": 1e-4}, {"params": list(model.fc.parameters()), "lr": 5e-4}],
        eps=1e-8,
        weight_decay=1e-4,
    )


def train_setup(size, batch, device, gen):
    model = Cucn(WIDTHS, size).to(device).train()
    optim = make_optimizer(model)
    x = torch.randn(batch, 3, size, size, generator=gen).to(device)
    targets = torch.randint(0, CLASSES, (batch,), generator=gen).to(device)
    w = torch.ones(CLASSES, device=device)

    def step():
        perm = torch.roll(torch.arange(batch), -1 - int(torch.randint(0, batch - 1, (1,), generator=gen)))
        _, _, _, loss = model.train_forward(x, targets, perm.to(device), w)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()

    return step


def eval_setup(model, size, batch, device, gen):
    x = torch.randn(batch, 3, size, size, generator=gen).to(device)

    def step():
        with torch.inference_mode():
            logits, u = model.eval_forward(x)
            F.softmax(logits, 1).cpu()
            u.cpu()

    return step


def run(args, device):
    memory = PeakMemory()
    sizes = []
    for size in args.size:
        gen = torch.Generator().manual_seed(size)
        memory.start_phase(device)
        train = timing(args.batch, time_runs(args, device, train_setup(size, args.batch, device, gen)))
        train_mem = memory.end_phase(device)
        memory.start_phase(device)
        model = Cucn(WIDTHS, size).to(device).eval()
        evals = [
            timing(n, time_runs(args, device, eval_setup(model, size, n, device, gen)))
            for n in (args.batch, 1)
        ]
        del model
        eval_mem = memory.end_phase(device)
        entry = {
            "size": size,
            "train": train,
            "eval": evals[0],
            "eval_single": evals[1],
            "train_peak_rss_mib": train_mem["rss"],
            "eval_peak_rss_mib": eval_mem["rss"],
        }
        if device.type == "cuda":
            entry["train_peak_gpu_mib"] = train_mem["gpu"]
            entry["eval_peak_gpu_mib"] = eval_mem["gpu"]
        sizes.append(entry)
        if not args.quiet:
            print(f"bench_torch: {size} px done", file=sys.stderr)
    memory.note(vm_hwm_kib())
    return {
        "device": f"torch {torch.__version__} {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()),
        "steps": args.steps,
        "warmup": args.warmup,
        "sizes": sizes,
        "peak_rss_mib": memory.overall / 1024 if memory.overall else None,
    }


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def measurements(cucn, torch_report):
    """(size, measurement, cucn, PyTorch, ratio, ratio's unit) for each size both measured."""
    rows = []
    by_size = {s["size"]: s for s in torch_report["sizes"]}
    for c in cucn["sizes"]:
        t = by_size.get(c["size"])
        if t is None:
            continue
        for key, name in [("train", "train img/s"), ("eval", "eval img/s")]:
            a, b = c[key]["images_per_second"], t[key]["images_per_second"]
            rows.append((c["size"], f"{name} (batch {c[key]['batch']})", a, b, a / b, "x"))
        a, b = c["eval_single"]["median_ms"], t["eval_single"]["median_ms"]
        rows.append((c["size"], "one image, ms (lower is better)", a, b, b / a, "x speed"))
        for key, name in [("train_peak_rss_mib", "train peak RSS MiB"), ("eval_peak_rss_mib", "eval peak RSS MiB")]:
            a, b = c.get(key), t.get(key)
            rows.append((c["size"], name, a, b, a / b if a and b else None, "x"))
    return rows


def comparison(cucn, torch_report):
    """Markdown table: cucn, PyTorch and the ratio for each size and measurement."""
    rows = [
        "| size | measurement | cucn | PyTorch | cucn / PyTorch |",
        "|---|---|---|---|---|",
    ]
    for size, name, a, b, ratio, unit in measurements(cucn, torch_report):
        spec = ".0f" if "MiB" in name else ".1f"
        rows.append(f"| {size} | {name} | {fmt(a, spec)} | {fmt(b, spec)} | {fmt(ratio, '.2f')}{unit if ratio else ''} |")
    return "\n".join(rows)


def shared_flags(args):
    """The settings both benches take, as command-line flags."""
    flags = ["--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    for size in args.size:
        flags += ["--size", str(size)]
    if args.threads:
        flags += ["--threads", str(args.threads)]
    return flags


def json_report(cmd):
    """The JSON a bench command prints."""
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def cucn_report(args):
    """`cucn bench --json` with this run's settings, from the binary at --cucn."""
    return json_report([args.cucn, "bench", "--json", "-q"] + shared_flags(args))


def torch_report(args):
    """This script's `--json` report with this run's settings, from a fresh process (a process
    that ran before keeps its allocator's memory, which would count in the next peaks)."""
    script = [sys.executable, os.path.abspath(__file__), "--json", "-q", "--device", args.device]
    return json_report(script + shared_flags(args))


def rounds(args):
    """--rounds: cucn then PyTorch, N times in turn; each round's ratios and their median.

    This machine's speed drifts by up to 30 % within minutes on both sides, so one pair of runs
    misleads; alternating the two and taking the median ratio is the comparison to quote.
    """
    table = {}
    for i in range(args.rounds):
        cucn = cucn_report(args)
        reference = torch_report(args)
        for size, name, _, _, ratio, unit in measurements(cucn, reference):
            table.setdefault((size, name, unit), []).append(ratio)
        if not args.quiet:
            print(f"bench_torch: round {i + 1} of {args.rounds} done", file=sys.stderr)
    print("| size | measurement | cucn / PyTorch, each round | median |")
    print("|---|---|---|---|")
    for (size, name, unit), ratios in table.items():
        known = [r for r in ratios if r is not None]
        each = ", ".join(fmt(r, ".2f") for r in ratios)
        median = f"**{statistics.median(known):.2f}{unit}**" if known else "-"
        print(f"| {size} | {name} | {each} | {median} |")


def profile(args, device):
    """PyTorch's own per-operator breakdown of one training step and one batched inference."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    size = args.profile
    gen = torch.Generator().manual_seed(size)
    train = train_setup(size, args.batch, device, gen)
    model = Cucn(WIDTHS, size).to(device).eval()
    infer = eval_setup(model, size, args.batch, device, gen)
    for name, step in [("training step", train), ("inference", infer)]:
        for _ in range(max(args.warmup, 1)):
            step()
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with torch_profile(activities=activities) as prof:
            step()
        print(f"== PyTorch {name}, {size} px, batch {args.batch} ==")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, action="append", help="input side (repeatable; default 112 and 224)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, help="intra-op threads (default: all cores)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--compare", metavar="CUCN.json", help="`cucn bench --json` output to compare with")
    ap.add_argument("--profile", type=int, metavar="PX", help="per-operator profile at this size instead")
    ap.add_argument("--rounds", type=int, metavar="N", help="run `cucn bench` and this in turn N times; print the ratios")
    ap.add_argument("--cucn", default="target/release/cucn", help="the cucn binary for --rounds")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args()
    args.size = args.size or [112, 224]
    if args.batch < 2:
        ap.error("--batch must be at least 2 (BatchNorm trains on batch statistics)")
    torch.set_num_threads(args.threads or os.cpu_count())
    device = torch.device(args.device)
    if args.profile:
        profile(args, device)
        return
    if args.rounds:
        rounds(args)
        return
    report = run(args, device)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['device']}, {report['threads']} threads, load average {report['load_average']}")
        print("size  train img/s  eval img/s  eval b=1 ms  train peak MiB  eval peak MiB")
        for s in report["sizes"]:
            print(
                f"{s['size']:>4}  {s['train']['images_per_second']:>11.1f}  {s['eval']['images_per_second']:>10.1f}"
                f"  {s['eval_single']['median_ms']:>11.1f}  {fmt(s['train_peak_rss_mib'], '>14.0f')}"
                f"  {fmt(s['eval_peak_rss_mib'], '>13.0f')}"
            )
    if args.compare:
        with open(args.compare) as f:
            print(comparison(json.load(f), report))


if __name__ == "__main__":
    main()
