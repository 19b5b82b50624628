"""What the tests share: the environment (env), fakes of the gateway's parts
(fakes), a virtual DTU day (vdtu), host-mode processes (gateway_proc), a
broker and its clients (broker, mqtt_live), a GitHub stand-in (gh_standin),
a board from a bundle (bundle_board), files that lose power (tmpfs), the
protobuf views of the oracles (pbview). Board-side helpers (fakes, tmpfs)
run on both Pythons, so this file stays empty."""
