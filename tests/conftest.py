import torch

# The suite's models are tiny: one thread is faster and immune to a busy machine.
torch.set_num_threads(1)
