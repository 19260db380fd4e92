/**
 * Hook registries with PyTorch's semantics (torch/utils/hooks.py): every
 * registration returns a RemovableHandle whose id comes from one process-wide
 * counter; hooks run in registration order, `prepend` puts one first, and
 * `remove()` is idempotent.
 */
let nextId = 0;

export class RemovableHandle {
  readonly id: number;
  private readonly registry: WeakRef<Map<number, unknown>>;

  constructor(registry: Map<number, unknown>) {
    this.id = nextId++;
    this.registry = new WeakRef(registry);
  }

  remove(): void {
    this.registry.deref()?.delete(this.id);
  }
}

export class HookRegistry<Hook> {
  private readonly entries = new Map<number, Hook>();

  add(hook: Hook, prepend = false): RemovableHandle {
    const handle = new RemovableHandle(this.entries as Map<number, unknown>);
    if (!prepend) {
      this.entries.set(handle.id, hook);
      return handle;
    }
    // move_to_end(last=False): re-insert everything after the new hook, same map.
    const rest = [...this.entries];
    this.entries.clear();
    this.entries.set(handle.id, hook);
    for (const [id, h] of rest) this.entries.set(id, h);
    return handle;
  }

  /** A snapshot, so that a hook removing itself while running does not skip others. */
  hooks(): Hook[] {
    return [...this.entries.values()];
  }

  get size(): number {
    return this.entries.size;
  }
}
