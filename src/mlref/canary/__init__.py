"""The canary in mlref: a share of traffic, sticky per user, goes to the challenger and acts;
``mlgates.canary`` decides promote / rollback / continue from the prediction log joined with
matured labels.

- ``state``: the rollout file in the workdir (written by the CLI, read by the server).
- ``outcomes``: per-arm outcomes from the prediction log + labels (business cost per transaction).
- ``decide``: the gate on those outcomes, and acting on its decision (registry aliases, records).
- ``control``: start / stop a rollout.

The routing itself is in ``mlref.serve.routing`` (the server's side).
"""
