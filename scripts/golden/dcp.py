"""NAdam optimizer state saved by torch.distributed.checkpoint (DCP), the way sharded runs save it.

Run by scripts/golden.mjs:  python3 dcp.py OUT_DIR   (torch >= 2.6; prints a JSON summary line last)
Writes OUT_DIR/<name>/ (DCP folders: .metadata + __<rank>_<n>.distcp), for each
OUT_DIR/<name>.consolidated.pt (torch's own dcp_to_torch_save of the folder) and
OUT_DIR/<name>.expected.json (the logical, FQN-keyed optimizer state dict, gathered
with full_tensor() in the ranks while they ran: independent of DCP's files), and
OUT_DIR/fqn-keyed.pt (+ .expected.json): get_optimizer_state_dict of a plain model,
torch.save'd, the same logical dict without DCP. flattened-2ranks saves the flat dict
of flatten_optimizer_state_dict=True under "optimizer", as torchtitan does; its
.expected.json is the nested logical dict all the same.

FSDP2 (fully_shard) does not run on CPU in torch 2.6, so the sharded fixtures use
what FSDP2 makes its params into: DTensors on a 1-D CPU mesh, gloo between ranks.
"""

import json
import os
import sys
import tempfile
import uuid

# Debian's torch is built without libuv; gloo's TCP store then needs this, in every rank.
os.environ.setdefault("USE_LIBUV", "0")

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.distributed.checkpoint as dcp  # noqa: E402
import torch.distributed.checkpoint.filesystem as dcp_fs  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from torch.distributed.checkpoint.format_utils import dcp_to_torch_save  # noqa: E402
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from state_dicts import encode  # noqa: E402

# name -> world size (0: no process group at all; a tuple: a 2-D mesh of that shape),
# params [(FQN, shape, dtype, placement)], groups [(param indices, options)], NAdam ctor
# options, steps. placement: "shard0"/"shard1" (a DTensor, Shard(dim) over all ranks),
# "hsdp" (Replicate() on the mesh's first dim, Shard(0) on its second, as FSDP2's HSDP
# places params) or "plain" (every rank holds the whole tensor, as DDP leaves it).
FIXTURES = {
    # 5 rows on 2 ranks: torch.chunk gives 3 + 2; 1 row on 2 ranks leaves rank 1 an empty shard.
    "shard0-2ranks": (2, [("layer.weight", [5, 3], "float32", "shard0"), ("layer.bias", [5], "float32", "shard0"), ("head.weight", [4, 5], "float32", "shard0"), ("head.scale", [1], "float32", "shard0")], [([0, 1, 2, 3], {})], {"foreach": False}, 3),
    # Shard(1): each rank's chunk is a column block, not a contiguous row range of the whole
    # tensor; 3 rows on 4 ranks and 2 columns on 4 ranks leave ranks empty shards.
    "shard1-4ranks": (4, [("embed.weight", [3, 8], "float32", "shard1"), ("proj.weight", [3, 6], "float32", "shard0"), ("proj.bias", [3], "float32", "shard0"), ("norm.weight", [5, 2], "float32", "shard1")], [([0, 1, 2, 3], {"weight_decay": 0.01})], {"foreach": True}, 2),
    # dcp.save without a process group: one rank, the file layout of a single-process save.
    "single-process": (0, [("fc.weight", [3, 4], "float32", "plain"), ("fc.bias", [3], "float32", "plain")], [([0, 1], {})], {"foreach": False}, 2),
    # The same whole tensors on both ranks: DCP keeps one copy of each (de-duplication).
    "replicated-2ranks": (2, [("fc.weight", [3, 4], "float32", "plain"), ("fc.bias", [3], "float32", "plain"), ("out.weight", [2, 3], "float32", "plain")], [([0, 1, 2], {"momentum_decay": 5e-3})], {"foreach": True}, 3),
    # HSDP: 2 replicas of a 2-way Shard(0); each chunk exists on two ranks and is saved once.
    "hsdp-2x2": ((2, 2), [("block.weight", [3, 4], "float32", "hsdp"), ("block.bias", [4], "float32", "hsdp")], [([0, 1], {})], {"foreach": True}, 2),
    # Two groups with different hyper-parameters, float64 and bfloat16 state, foreach (the
    # other fixtures cover the for-loop path: shard0-2ranks, single-process).
    "groups-dtypes-2ranks": (2, [("enc.weight", [4, 3], "float64", "shard0"), ("enc.bias", [3], "float64", "shard0"), ("dec.weight", [5, 2], "bfloat16", "shard0"), ("dec.gate", [3, 2], "float32", "shard1")], [([0, 1], {"lr": 2e-3, "weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True}), ([2, 3], {"lr": 1e-2, "betas": (0.8, 0.95), "eps": 1e-6, "momentum_decay": 6e-3})], {"foreach": True}, 4),
    # torchtitan's save: get_optimizer_state_dict(..., flatten_optimizer_state_dict=True), a
    # flat dict ("state.<fqn>.<name>", "param_groups.<fqn>.<option>", no "params") under the
    # key "optimizer". Two groups that interleave the model's params (the flat keys say which
    # group a param was in only through its options); foreach left None (a None option).
    "flattened-2ranks": (2, [("attn.wq", [5, 3], "float32", "shard0"), ("attn.bias", [3], "float32", "shard0"), ("mlp.w1", [4, 2], "float32", "shard0"), ("mlp.bias", [1], "float32", "shard0")], [([0, 2], {"lr": 3e-3, "weight_decay": 0.05}), ([1, 3], {"lr": 1e-2})], {}, 3),
    # DDP's usual save: optimizer.state_dict() itself (int ids, no FQNs) given to dcp.save, on
    # 2 ranks holding the same plain tensors. DCP keeps dict keys as strings: "0", "1", ...
    "ids-2ranks": (2, [("fc.weight", [3, 4], "float32", "plain"), ("fc.bias", [3], "float32", "plain")], [([0], {}), ([1], {"lr": 1e-2})], {"foreach": False}, 2),
}
# Fixtures whose optimizer state dict is optimizer.state_dict() (int ids) rather than get_optimizer_state_dict's.
ID_KEYED = {"ids-2ranks"}
# Fixtures saved as torchtitan saves them (the flat dict under "optimizer"); their
# .expected.json is still the nested, FQN-keyed dict, from a separate non-flattened call.
FLATTENED = {"flattened-2ranks"}
FQN_KEYED = (0, [("encoder.weight", [3, 2], "float32", "plain"), ("encoder.bias", [2], "float32", "plain"), ("head.weight", [1, 2], "float64", "plain")], [([0, 1], {}), ([2], {"lr": 5e-3, "weight_decay": 0.02})], {"foreach": False}, 3)


def full_values(shape, dtype, seed, shift):
    """The same whole tensor on every rank: seeded float64 uniforms, then the dtype."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - shift).to(getattr(torch, dtype))


class Model(torch.nn.Module):
    """A module whose params sit at the given dotted FQNs (submodules made on the way)."""

    def __init__(self, params):
        super().__init__()
        for fqn, tensor in params:
            *path, leaf = fqn.split(".")
            owner = self
            for part in path:
                if not hasattr(owner, part):
                    owner.add_module(part, torch.nn.Module())
                owner = getattr(owner, part)
            owner.register_parameter(leaf, torch.nn.Parameter(tensor))


def place(tensor, placement, mesh):
    if placement == "plain":
        return tensor
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    return distribute_tensor(tensor, mesh, [Replicate(), Shard(0)] if placement == "hsdp" else [Shard(int(placement[-1]))])


def run(recipe, mesh):
    """The model and its NAdam after the recipe's steps; grads are seeded whole tensors, placed like their params."""
    _, specs, groups, ctor, steps = recipe
    model = Model([(fqn, place(full_values(shape, dtype, i, 1), placement, mesh)) for i, (fqn, shape, dtype, placement) in enumerate(specs)])
    params = dict(model.named_parameters())
    opt = torch.optim.NAdam([dict(params=[params[specs[i][0]] for i in indices], **options) for indices, options in groups], **ctor)
    for step in range(steps):
        for i, (fqn, shape, dtype, placement) in enumerate(specs):
            params[fqn].grad = place(full_values(shape, dtype, 1000 * (step + 1) + i, 0.5), placement, mesh)
        opt.step()
    return model, opt


def full(value):
    """A DTensor gathered whole (a collective: every rank calls it); other values as they are."""
    from torch.distributed.tensor import DTensor

    return value.full_tensor() if isinstance(value, DTensor) else value


def logical(osd):
    """The FQN-keyed optimizer state dict with whole tensors, as JSON (state_dicts.py's encoding)."""
    state = {fqn: {k: encode(full(v)) for k, v in entry.items()} for fqn, entry in osd["state"].items()}
    return {"state": state, "param_groups": encode(osd["param_groups"])}


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=1)
        f.write("\n")


def deterministic_save_id(name):
    # .metadata's storage_meta carries FileSystemWriter's save_id, a uuid4 made when the
    # writer is; a name-derived uuid keeps the files byte-identical from run to run.
    dcp_fs._generate_uuid = lambda: str(uuid.uuid5(uuid.NAMESPACE_URL, "nadam-reference/golden/dcp/" + name))


def save(name, recipe, out_dir):
    """One rank's part (or the whole, without a process group): run, save with DCP, rank 0 writes the JSON."""
    mesh = None
    if dist.is_initialized():
        from torch.distributed.device_mesh import init_device_mesh

        world = recipe[0]
        mesh = init_device_mesh("cpu", world if isinstance(world, tuple) else (world,))
    model, opt = run(recipe, mesh)
    osd = get_optimizer_state_dict(model, opt)
    expected = logical(osd)
    saved = {"optim": osd}
    if name in FLATTENED:
        saved = {"optimizer": get_optimizer_state_dict(model, opt, options=StateDictOptions(flatten_optimizer_state_dict=True))}
    if name in ID_KEYED:
        expected = logical(opt.state_dict())
        saved = {"optim": opt.state_dict()}
    deterministic_save_id(name)
    # storage_meta also holds the checkpoint_id as given: a path relative to OUT_DIR, not
    # this machine's absolute one.
    os.chdir(out_dir)
    dcp.save(saved, checkpoint_id=name)
    if not dist.is_initialized() or dist.get_rank() == 0:
        write_json(name + ".expected.json", expected)


def rank_main(rank, name, world, store, out_dir):
    import faulthandler
    # A rank stuck in a collective (a peer died) fails the run instead of hanging it.
    faulthandler.dump_traceback_later(300, exit=True)
    dist.init_process_group("gloo", rank=rank, world_size=world, init_method="file://" + store)
    save(name, FIXTURES[name], out_dir)
    # No destroy_process_group(): with the file:// store it hung on 4 ranks (torch 2.6);
    # after the barrier every rank is done and simply exits.
    dist.barrier()


def main():
    out_dir = os.path.abspath(sys.argv[1])
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for name, recipe in FIXTURES.items():
        world = recipe[0]
        if isinstance(world, tuple):
            world = world[0] * world[1]
        if world == 0:
            save(name, recipe, out_dir)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                mp.spawn(rank_main, args=(name, world, os.path.join(tmp, "store"), out_dir), nprocs=world, join=True)
        dcp_to_torch_save(os.path.join(out_dir, name), os.path.join(out_dir, name + ".consolidated.pt"))
        written.append(name)
    # Without DCP: the FQN-keyed dict of a plain model, torch.save'd as one file.
    model, opt = run(FQN_KEYED, None)
    osd = get_optimizer_state_dict(model, opt)
    torch.save(osd, os.path.join(out_dir, "fqn-keyed.pt"))
    write_json(os.path.join(out_dir, "fqn-keyed.expected.json"), logical(osd))
    print(json.dumps({"torch": torch.__version__, "written": written + ["fqn-keyed"]}))


if __name__ == "__main__":
    main()
