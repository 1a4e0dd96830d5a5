#!/usr/bin/env bash
# What a pre-packed output layer would give: build CTranslate2 from source with one change
# (TransformerModel::is_packable also packs the decoder's output projection, as it already does
# for every other linear layer) and run benchmarks/translate.py --quick against that build.
#
# An experiment, not something polyqa ships or uses: a
# build with this change cannot use vocabulary maps (use_vmap), which is why CTranslate2 leaves
# the projection unpacked today.
#
#   bash benchmarks/packed_projection.sh [CTRANSLATE2_SOURCE] [--unchanged] [-- translate.py args]
#
# CTRANSLATE2_SOURCE: a CTranslate2 checkout with its cpu_features and spdlog submodules
# (default: a shallow clone of the tag that matches the installed ctranslate2 and those two submodules).
# --unchanged builds the same source without the change, to check that a source build is as fast
# as the PyPI wheel (so the change, not the build, is what a difference comes from).
# Needs cmake, ninja, a C++17 compiler and network access to PyPI (oneMKL's static libraries);
# takes a few minutes on 2 cores. Everything goes under $POLYQA_BENCH_DIR (default
# ~/.cache/polyqa/bench)/ctranslate2-packed-projection; nothing outside it is written.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
python=${PYTHON:-$repo/.venv/bin/python}
source_dir=""
variant=packed
bench_args=(--quick)
while (($#)); do
    case $1 in
        --unchanged) variant=unchanged; shift ;;
        --) shift; bench_args=("$@"); break ;;
        *) source_dir=$1; shift ;;
    esac
done

root=${POLYQA_BENCH_DIR:-$HOME/.cache/polyqa/bench}/ctranslate2-packed-projection
work=$root/$variant
marker=$work/.made-by-packed_projection.sh
if [[ -e $work && ! -e $marker ]]; then
    echo "$work exists and this script did not make it; move it away or set POLYQA_BENCH_DIR" >&2
    exit 2
fi
mkdir -p "$root"
if [[ -z $source_dir ]]; then
    version=$("$python" -c 'import ctranslate2; print(ctranslate2.__version__)')
    source_dir=$root/CTranslate2-$version
    if [[ ! -d $source_dir ]]; then
        git clone --depth 1 --branch "v$version" https://github.com/OpenNMT/CTranslate2 "$source_dir"
        # only the submodules a CPU build needs
        git -C "$source_dir" submodule update --init --depth 1 third_party/cpu_features third_party/spdlog
    fi
fi
for needed in CMakeLists.txt src/models/transformer.cc third_party/cpu_features/CMakeLists.txt \
              third_party/spdlog/CMakeLists.txt python/setup.py; do
    [[ -f $source_dir/$needed ]] || { echo "$source_dir: no $needed (a CTranslate2 checkout with submodules?)" >&2; exit 2; }
done

# oneMKL as the PyPI wheel builds use it (static, GNU OpenMP), into a virtualenv of its own.
tools=$root/tools
if [[ ! -f $tools/include/mkl.h ]]; then
    "$python" -m venv "$tools"
    "$tools/bin/pip" install --quiet "mkl-static==2025.3.*" "mkl-include==2025.3.*" pybind11 setuptools
fi

rm -rf "$work"  # the previous run's build of this variant
mkdir -p "$work"
touch "$marker"
cp -r "$source_dir" "$work/src"
rm -rf "$work/src/.git" "$work/src/build" "$work/src/python/build" "$work/src/python/ctranslate2/"*.so*
if [[ $variant == packed ]]; then
    "$python" - "$work/src/src/models/transformer.cc" <<'EOF'
import sys
path = sys.argv[1]
text = open(path, encoding="utf-8").read()
unpacked = """      return (is_linear_weight(variable_name)
              && variable_name.find("projection") == std::string::npos);"""
if unpacked not in text:
    sys.exit(f"{path}: TransformerModel::is_packable is not the one this experiment changes")
packed = """      return is_linear_weight(variable_name);  // experiment: pack the output projection too"""
open(path, "w", encoding="utf-8").write(text.replace(unpacked, packed))
EOF
fi

MKLROOT=$tools cmake -S "$work/src" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_CLI=OFF \
    -DWITH_MKL=ON -DWITH_DNNL=OFF -DOPENMP_RUNTIME=COMP -DCMAKE_INSTALL_PREFIX="$work/install" > "$work/cmake.log"
cmake --build "$work/build" -j "$(nproc)" > "$work/build.log"
cmake --install "$work/build" > /dev/null
(cd "$work/src/python" && CTRANSLATE2_ROOT=$work/install "$tools/bin/python" setup.py build_ext --inplace \
    > "$work/python-build.log")
cp -a "$work/install/lib/"libctranslate2.so* "$work/src/python/ctranslate2/"
echo "built $variant CTranslate2 into $work/src/python/ctranslate2" >&2

# The build itself loads the machine: let the 1-minute load settle before timing anything.
for _ in $(seq 60); do
    awk '{exit !($1 < 1)}' /proc/loadavg && break
    sleep 10
done

# The benchmark, with this build in front of the installed wheel. The output-layer figure needs
# vocabulary maps, which the packed build cannot use.
extra=()
[[ $variant == packed ]] && extra=(--skip-output-layer)
cd "$repo"
LD_LIBRARY_PATH=$work/src/python/ctranslate2${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
PYTHONPATH=$work/src/python${PYTHONPATH:+:$PYTHONPATH} \
    "$python" benchmarks/translate.py "${bench_args[@]}" "${extra[@]}" 2>&1 | tee "$work/translate.log"
