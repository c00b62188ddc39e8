#!/usr/bin/env python3
"""Reference fixtures for cucn's model, loss, optimizer and weight import, computed with PyTorch.

Regenerate (needs torch and safetensors; CI never runs this):

    pip install torch safetensors
    python3 scripts/gen_fixtures.py            # writes tests/fixtures/model/

The network below mirrors src/model/ exactly (METHOD.md): torchvision ResNet names, CBAM on the
residual branch after the last BatchNorm (`cbam.channel.fc1/fc2`, `cbam.spatial.conv/bn`), RUL's
head (`mu|logvar.bn2d/linear/bn1d`) and the classifier `fc`.

Files:
- narrow.safetensors and narrow_step2.safetensors (`grad2.*`, `after.*`, `eval.*`): a narrow ResNet-18+CBAM (widths 8-16-32-64, 32x32 input, batch 4, head
  dropout 0 so both sides are deterministic): initial weights `w.*`, input `x`, `targets`,
  permutation `perm`, non-uniform `class_weights`; training-mode outputs `out.logits`, `out.u`,
  `out.mixed`, `out.loss`; gradients `grad.*` of every parameter and PyTorch's own f32 error
  on each against a float64 run `grad_err.*` (one number per tensor); a second step's gradients
  `grad2.*`; the whole state (parameters and BatchNorm buffers) after two Adam steps `after.*`
  (two groups: lr 1e-3, classifier 1e-2, L2 weight decay 1e-4, eps 1e-8); eval-mode outputs of
  that state `eval.logits`, `eval.u`.
- full_r18_64.safetensors: input and eval-mode `logits`, `u` of a full-width ResNet-18+CBAM at
  64x64 whose weights come from `formula_value` (the Rust test computes the same weights).
- backbone_{plain,nested,model_state_dict,module}.pth: a narrow (4-8-16-32) ResNet-18 backbone
  state dict with a torchvision-style `fc` in each supported key layout; backbone.safetensors
  holds the input `x` and the eval-mode backbone features `features`.
- crafted_*.pth: hostile checkpoints (absurd tensor size, unknown pickle opcode, integer weights).
"""
import io
import math
import os
import zipfile

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "model")


class ChannelGate(nn.Module):
    def __init__(self, c, reduction):
        super().__init__()
        hidden = max(c // reduction, 1)
        self.fc1 = nn.Linear(c, hidden)
        self.fc2 = nn.Linear(hidden, c)

    def mlp(self, x):
        return self.fc2(F.relu(self.fc1(x)))

    def forward(self, x):
        b, c = x.shape[:2]
        flat = x.reshape(b, c, -1)
        gate = torch.sigmoid(self.mlp(flat.mean(2)) + self.mlp(flat.max(2)[0]))
        return x * gate.reshape(b, c, 1, 1)


class SpatialGate(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 7, padding=3, bias=False)
        self.bn = nn.BatchNorm2d(1, momentum=0.01)

    def forward(self, x):
        pooled = torch.cat([x.max(1, keepdim=True)[0], x.mean(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.bn(self.conv(pooled)))


class CBAM(nn.Module):
    def __init__(self, c, reduction=16):
        super().__init__()
        self.channel = ChannelGate(c, reduction)
        self.spatial = SpatialGate()

    def forward(self, x):
        return self.spatial(self.channel(x))


def conv(cin, cout, k, s):
    return nn.Conv2d(cin, cout, k, stride=s, padding=k // 2, bias=False)


class Block(nn.Module):
    def __init__(self, cin, width, stride, bottleneck, cbam):
        super().__init__()
        out = width * (4 if bottleneck else 1)
        if bottleneck:
            self.conv1, self.conv2 = conv(cin, width, 1, 1), conv(width, width, 3, stride)
            self.conv3, self.bn3 = conv(width, out, 1, 1), nn.BatchNorm2d(out)
        else:
            self.conv1, self.conv2 = conv(cin, width, 3, stride), conv(width, width, 3, 1)
            self.conv3 = None
        self.bn1, self.bn2 = nn.BatchNorm2d(width), nn.BatchNorm2d(width)
        self.cbam = CBAM(out) if cbam else None
        self.downsample = None
        if stride != 1 or cin != out:
            self.downsample = nn.Sequential(conv(cin, out, 1, stride), nn.BatchNorm2d(out))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.conv3 is not None:
            y = self.bn3(self.conv3(F.relu(y)))
        if self.cbam is not None:
            y = self.cbam(y)
        return F.relu(y + identity)


class Branch(nn.Module):
    def __init__(self, c, side, dim, dropout):
        super().__init__()
        self.bn2d = nn.BatchNorm2d(c, eps=2e-5, affine=False)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(c * side * side, dim)
        self.bn1d = nn.BatchNorm1d(dim, eps=2e-5)

    def forward(self, f):
        return self.bn1d(self.linear(torch.flatten(self.dropout(self.bn2d(f)), 1)))


class Backbone(nn.Module):
    def __init__(self, widths, cbam, blocks=(2, 2, 2, 2), bottleneck=False, classes=1000):
        super().__init__()
        self.conv1, self.bn1 = conv(3, widths[0], 7, 2), nn.BatchNorm2d(widths[0])
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            layers = []
            for j in range(n):
                layers.append(Block(cin, w, 2 if (i > 0 and j == 0) else 1, bottleneck, cbam))
                cin = w * (4 if bottleneck else 1)
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
        self.channels = cin
        self.fc = nn.Linear(cin, classes)  # torchvision's classifier, ignored by cucn's import

    def features(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class Cucn(nn.Module):
    def __init__(self, widths, size, cbam=True, classes=7, dim=64, dropout=0.4):
        super().__init__()
        bb = Backbone(widths, cbam)
        del bb.fc
        for name in ["conv1", "bn1", "maxpool", "layer1", "layer2", "layer3", "layer4"]:
            setattr(self, name, getattr(bb, name))
        self._features = bb.features.__func__
        side = feature_side(size)
        self.mu = Branch(bb.channels, side, dim, dropout)
        self.logvar = Branch(bb.channels, side, dim, dropout)
        self.fc = nn.Linear(dim, classes)

    def head(self, x):
        f = self._features(self, x)
        return self.mu(f), self.logvar(f).exp().mean(1)

    def train_forward(self, x, targets, perm, w):
        mu, u = self.head(x)
        a = (u / (u + u[perm])).unsqueeze(1)
        mixed = a * mu + (1 - a) * mu[perm]
        logits = self.fc(mixed)
        loss = 0.5 * F.cross_entropy(logits, targets, weight=w) + 0.5 * F.cross_entropy(
            logits, targets[perm], weight=w)
        return logits, u, mixed, loss

    def eval_forward(self, x):
        mu, u = self.head(x)
        return self.fc(mu), u


def feature_side(n):
    n = (n + 6 - 7) // 2 + 1
    for _ in range(4):
        n = (n + 2 - 3) // 2 + 1
    return n


def formula_value(name, shape):
    """Deterministic weights from a parameter's name and flat index (the Rust test mirrors it)."""
    numel = math.prod(shape)
    phase = sum(ord(c) for c in name) % 97
    s = torch.sin(0.37 * torch.arange(numel, dtype=torch.float64) + 0.11 * phase)
    if name.endswith("running_var"):
        v = 1.0 + 0.25 * (1.0 + s)
    elif name.endswith("running_mean") or name.endswith(".bias"):
        v = 0.05 * s
    elif len(shape) == 1:  # BatchNorm scale
        v = 1.0 + 0.1 * s
    else:
        v = s * math.sqrt(2.0 / (numel // shape[0]))
    return v.float().reshape(shape)


def narrow_step(model, dtype, x, targets, perm, w):
    model = model.to(dtype)
    model.train()
    logits, u, mixed, loss = model.train_forward(x.to(dtype), targets, perm, w.to(dtype))
    loss.backward()
    return logits, u, mixed, loss


def own_gradient_error(init, x, targets, perm, w, grads):
    """PyTorch's own f32 gradient error against float64, per tensor, measured as the tests do:
    max |g32 - g64| / max(max |g64|, 1e-4 * largest |g64|). Some scalars (the spatial BatchNorm
    of CBAM) are ill-conditioned sums whose f32 error reaches 5e-4 even in PyTorch."""
    model = Cucn([8, 16, 32, 64], 32, dropout=0.0)
    model.load_state_dict(init, strict=False)
    narrow_step(model, torch.float64, x, targets, perm, w)
    g64 = {n: p.grad for n, p in model.named_parameters()}
    largest = max(g.abs().max().item() for g in g64.values())
    return {n: torch.tensor([(grads[n].double() - g).abs().max().item()
                             / max(g.abs().max().item(), 1e-4 * largest)])
            for n, g in g64.items()}


def narrow_fixture():
    torch.manual_seed(7)
    model = Cucn([8, 16, 32, 64], 32, dropout=0.0)
    init = {k: v.clone() for k, v in model.state_dict().items() if "num_batches" not in k}
    x = torch.randn(4, 3, 32, 32)
    targets = torch.tensor([3, 0, 6, 1])
    perm = torch.tensor([2, 0, 3, 1])
    w = torch.tensor([1.5, 3.0, 2.0, 0.5, 1.0, 2.5, 0.8])
    fc = [model.fc.weight, model.fc.bias]
    rest = [p for n, p in model.named_parameters() if not n.startswith("fc.")]
    opt = torch.optim.Adam([{"params": rest}, {"params": fc, "lr": 1e-2}], lr=1e-3,
                           betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-4)
    opt.zero_grad()
    logits, u, mixed, loss = narrow_step(model, torch.float32, x, targets, perm, w)
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    own_err = own_gradient_error(init, x, targets, perm, w, grads)
    opt.step()
    _, _, _, loss2 = model.train_forward(x, targets, perm, w)
    opt.zero_grad()
    loss2.backward()
    grads2 = {n: p.grad.clone() for n, p in model.named_parameters()}
    opt.step()
    model.eval()
    with torch.no_grad():
        eval_logits, eval_u = model.eval_forward(x)
    out = {f"w.{k}": v for k, v in init.items()}
    out.update({f"grad.{k}": v for k, v in grads.items()})
    out.update({f"grad_err.{k}": v.float() for k, v in own_err.items()})
    out.update({f"grad2.{k}": v for k, v in grads2.items()})
    out.update({f"after.{k}": v for k, v in model.state_dict().items() if "num_batches" not in k})
    out.update({"x": x, "targets": targets, "perm": perm, "class_weights": w,
                "out.logits": logits, "out.u": u, "out.mixed": mixed,
                "out.loss": loss.reshape(1), "eval.logits": eval_logits, "eval.u": eval_u})
    # Two files, each under 2 MiB: the first step, and the second step with the state after it.
    second = ("grad2.", "after.", "eval.")
    for name, keep in [("narrow.safetensors", lambda k: not k.startswith(second)),
                       ("narrow_step2.safetensors", lambda k: k.startswith(second))]:
        save_file({k: v.detach().contiguous() for k, v in out.items() if keep(k)},
                  os.path.join(OUT, name))


def full_fixture():
    model = Cucn([64, 128, 256, 512], 64)
    sd = model.state_dict()
    with torch.no_grad():
        for name, t in sd.items():
            if "num_batches" in name:
                continue
            t.copy_(formula_value(name, list(t.shape)))
    model.eval()
    torch.manual_seed(11)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits, u = model.eval_forward(x)
    save_file({"x": x, "logits": logits, "u": u}, os.path.join(OUT, "full_r18_64.safetensors"))


def save_pth(obj, name):
    torch.save(obj, os.path.join(OUT, name))


def rewrite_zip_entry(src, dst, entry_suffix, patch):
    """Copies a torch zip checkpoint, transforming the bytes of one entry."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith(entry_suffix):
                data = patch(data)
            zout.writestr(item, data)


def pth_fixtures():
    torch.manual_seed(3)
    bb = Backbone([4, 8, 16, 32], cbam=False, classes=10)
    # Train-mode passes give the BatchNorm buffers non-trivial values.
    bb.train()
    with torch.no_grad():
        for _ in range(3):
            bb.features(torch.randn(8, 3, 32, 32))
    bb.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = bb.features(x)
    save_file({"x": x, "features": feats}, os.path.join(OUT, "backbone.safetensors"))
    sd = bb.state_dict()
    save_pth(sd, "backbone_plain.pth")
    save_pth({"state_dict": sd, "epoch": 12}, "backbone_nested.pth")
    save_pth({"model_state_dict": sd, "optimizer_state_dict": {}}, "backbone_model_state_dict.pth")
    save_pth({f"module.{k}": v for k, v in sd.items()}, "backbone_module.pth")

    # Hostile files, all small. An absurd size: a one-element storage viewed with stride 0 as a
    # 123457 x 3 tensor, whose pickled shape is then patched to claim (2^31 - 1) x 3.
    buf = os.path.join(OUT, "_tmp.pth")
    torch.save({"conv1.weight": torch.zeros(1).as_strided((123457, 3), (0, 0))}, buf)
    size_bytes = b"J" + (123457).to_bytes(4, "little")  # pickle BININT 123457
    huge = b"J" + (0x7FFFFFFF).to_bytes(4, "little")

    def patch_size(data):
        assert size_bytes in data
        return data.replace(size_bytes, huge, 1)

    rewrite_zip_entry(buf, os.path.join(OUT, "crafted_huge.pth"), "data.pkl", patch_size)

    # An unknown pickle opcode right after the protocol header.
    torch.save({"conv1.weight": torch.zeros(2, 2)}, buf)
    rewrite_zip_entry(buf, os.path.join(OUT, "crafted_opcode.pth"), "data.pkl",
                      lambda d: d[:2] + b"\xd3" + d[3:])
    # Integer weights where floats are expected.
    save_pth({"conv1.weight": (sd["conv1.weight"] * 100).to(torch.int64)}, "crafted_int.pth")
    os.remove(buf)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(2)
    narrow_fixture()
    full_fixture()
    pth_fixtures()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {OUT}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
