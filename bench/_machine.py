"""The machine a bench figure was measured on, named the same way by every script in `bench/`: processors differ between
machines and round differently, so every figure carries the processor's model, not just its architecture."""
import os, platform

def cpu_name() -> str:
    "The processor's model name from /proc/cpuinfo (Linux), else what `platform` knows (at least the architecture)."
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'): return line.split(':', 1)[1].strip()
    except OSError: pass
    return platform.processor() or platform.machine()

def machine() -> str:
    "Processor model, cores, torch version and its threads: the line each bench table starts with."
    import torch
    return f'{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads'
