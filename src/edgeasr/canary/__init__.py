"""Canary rollout with shadow traffic: compare what two versions of the model *say*, then promote.

Roles follow the champion/challenger convention: the **champion** is the live version whose answers
users get; the **challenger** is the candidate. Versions are Triton model versions (``"1"``,
``"2"``, ...) of one model (``edgeasr``).

* :class:`~edgeasr.canary.router.ShadowProxy` sends every request to the champion and returns its
  answer; the same audio is mirrored to the challenger on a worker thread. The challenger's errors
  or slowness never fail or delay the champion's answer: the mirror runs beside it, is never waited
  for, and is shed (not queued) once ``max_pending`` mirrors are outstanding. Each request gets a
  correlation id; when both sides have answered, the pair (texts, latencies, errors) is appended to
  a JSONL log.
* :class:`~edgeasr.canary.router.CanaryRouter` is the traffic router of a staged canary. It reads
  the **live file** (``<repository>/<model>/live.json`` by default, see
  :class:`~edgeasr.serving.live.LiveState`): which version is the champion, which the challenger,
  and what percentage of requests the challenger serves. A request is routed by a hash of its
  correlation id and, in shadow mode, mirrored to the other version so that every request yields a
  pair for the analysis.
* :class:`~edgeasr.canary.rollout.Rollout` steps the challenger's traffic through the policy's steps
  (e.g. 5, 25, 50, 100 percent); after each step :func:`~edgeasr.canary.stats.analyze` judges the step's pairs:
  *success* goes to the next step, *failure* counts against the failure limit and at the limit
  rolls back, *inconclusive* holds the step and gathers more pairs (``max_holds`` times, then the
  rollout ends **held**). Success at the last step **promotes**.

**Promotion and rollback never drop a request in flight.** Both versions stay loaded throughout;
promotion atomically replaces the live file (``os.replace``) so that requests routed from then on
go to the new champion, while requests routed before finish on the version they were sent to. Only
after the router's in-flight count for the retired version has drained (and only when the policy
says ``retire_versions``) is the repository's ``version_policy`` narrowed and the model reloaded
through Triton's explicit model control, so that clients that do not pin a version (Triton's
default is the highest loaded one) follow the live file too.

Exit codes of ``edgeasr canary rollout`` (and of ``shadow``, by the analysis outcome):
:data:`~edgeasr.canary.policy.EXIT_PROMOTED` 0 promoted (success),
:data:`~edgeasr.canary.policy.EXIT_ERROR` 1 usage or server error,
:data:`~edgeasr.canary.policy.EXIT_ROLLED_BACK` 3 rolled back (failure),
:data:`~edgeasr.canary.policy.EXIT_HELD` 4 held (inconclusive).

Modules, each importing only those above it (``stats`` and ``versions`` are leaves):

* :mod:`~edgeasr.canary.stats`: champion-versus-challenger statistics of pair records, with
  bootstrap intervals, and the verdict (success, failure, inconclusive).
* :mod:`~edgeasr.canary.versions`: which published versions Triton serves (``version_policy``).
* :mod:`~edgeasr.canary.policy`: :class:`~edgeasr.canary.policy.CanaryPolicy` (the policy TOML)
  and the exit codes.
* :mod:`~edgeasr.serving.live`: the live file (:class:`~edgeasr.serving.live.LiveState`) and the
  JSONL pair log (:class:`~edgeasr.serving.live.PairLog`).
* :mod:`~edgeasr.canary.router`: the request path: the shadow proxy and the canary router.
* :mod:`~edgeasr.canary.rollout`: traffic replay, the rollout state machine, retiring versions in
  Triton.
* :mod:`~edgeasr.canary.report`: JSON, markdown and PNG reports of a shadow run or a rollout.
* :mod:`~edgeasr.canary.kserve`: the policy as KServe ``InferenceService`` manifests.
* :mod:`~edgeasr.canary.cli`: ``edgeasr canary shadow|rollout|kserve``.

Nothing is imported here, so that building the top-level command line stays cheap: import the
names from their modules (``from edgeasr.canary.policy import CanaryPolicy``).
"""
