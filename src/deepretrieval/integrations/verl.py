"""The reward functions verl calls. Point verl at this file:

    reward.custom_reward_function.path=$(python -c 'import deepretrieval.integrations.verl as m; print(m.__file__)')
    reward.custom_reward_function.name=compute_score          # per sample (verl >= 0.7 reward loop, naive)
    reward.custom_reward_function.name=compute_score_batch    # the batch manager of older verl

verl loads this file by path, as a module of its own: the work (and the per-process task cache) lives in
``deepretrieval.integrations.verl_reward``, imported normally, so every load of this file shares it.
See docs/verl.md.
"""

from deepretrieval.integrations.verl_reward import compute_score, compute_score_batch

__all__ = ["compute_score", "compute_score_batch"]
