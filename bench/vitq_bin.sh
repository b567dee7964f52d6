# Sourced by the bench scripts from the repository root: V is the vitq binary they run, VITQ_BIN
# when set (an already built vitq), else ./build/vitq after scripts/setup.sh and scripts/build.sh.
if [ -z "${VITQ_BIN:-}" ]; then
  bash scripts/setup.sh
  bash scripts/build.sh
fi
V=${VITQ_BIN:-./build/vitq}
