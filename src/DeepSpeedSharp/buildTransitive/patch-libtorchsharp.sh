#!/usr/bin/env bash
# Makes TorchSharp 0.107.0's libLibTorchSharp.so load on glibc/libstdc++ systems older than GCC 13
# (Debian 12): the library declares a need for GLIBCXX_3.4.32 for one symbol it never calls.
# We mark that one version requirement weak (vna_flags = VER_FLG_WEAK) in the *build output* copy,
# never in the NuGet cache, and only when the file is exactly the one we know.
# Run after every build and publish by DeepSpeedSharp.targets (shipped in the DeepSpeedSharp NuGet package's
# buildTransitive/ folder, and imported by the repository's Directory.Build.targets).
# Usage: patch-libtorchsharp.sh OUTPUT_DIR   (searches OUTPUT_DIR for libLibTorchSharp.so)
set -euo pipefail
dir=${1:?usage: patch-libtorchsharp.sh OUTPUT_DIR}
known=cf33b1b0bb6bbb9754a768fb5c5d04d9f498603be50e73f55621a0b40ee608b8
offset=260660   # vna_flags byte of the GLIBCXX_3.4.32 Vernaux entry in the known file
find "$dir" -name libLibTorchSharp.so \( -type f -o -type l \) 2>/dev/null | while read -r lib; do
  sum=$(sha256sum "$lib" | cut -d' ' -f1)
  if [ "$sum" = "$known" ]; then
    # A symlink or hard link into the NuGet cache must not be written through: patch a private copy.
    if [ -L "$lib" ] || [ "$(stat -L -c %h "$lib")" -gt 1 ]; then
      cp -L "$lib" "$lib.dss-tmp" && mv -f "$lib.dss-tmp" "$lib"
    fi
    printf '\002' | dd of="$lib" bs=1 seek=$offset conv=notrunc status=none
    echo "patch-libtorchsharp: marked GLIBCXX_3.4.32 weak in $lib"
  elif [ -f "$lib.dss-patched" ] && [ "$(cat "$lib.dss-patched")" = "$sum" ]; then
    : # already patched by us
  elif ! grep -q GLIBCXX_3.4.32 "$lib"; then
    continue # another TorchSharp build that does not need the fix
  else
    echo "patch-libtorchsharp: warning: $lib needs GLIBCXX_3.4.32 but is not the known TorchSharp 0.107.0 build (sha256 $sum); left unpatched" >&2
    continue
  fi
  sha256sum "$lib" | cut -d' ' -f1 > "$lib.dss-patched"
done
