#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Build the Debian packages (tpserver and tpclient) from a copy of the
# source tree, so that nothing is written into the tree or next to it.
#
#   packaging/build-deb.sh [--version VERSION] [--from REV] [--lintian] OUTDIR
#
# --version VERSION  build as VERSION (a changelog entry is added to the
#                    copy; a numeric X.Y.Z also becomes the programs'
#                    own version), e.g. 0.2.1 for an upgrade test
# --from REV         build the tree of git revision REV (git archive, with
#                    that revision's debian/) instead of the work tree,
#                    e.g. an earlier release for the upgrade test
# --lintian          run lintian --pedantic on the result (fails on errors
#                    and warnings)
#
# The .deb, .buildinfo and .changes files end up in OUTDIR.  As root, missing
# Build-Depends are installed with apt-get first.  DEB_BUILD_OPTIONS is
# passed through (e.g. nocheck).
set -euo pipefail

usage() {
	sed -n '4,20s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

version=""
from=""
lintian=0
outdir=""
while [ $# -gt 0 ]; do
	case "$1" in
	--version) [ $# -ge 2 ] || usage; version="$2"; shift 2 ;;
	--version=*) version="${1#--version=}"; shift ;;
	--from) [ $# -ge 2 ] || usage; from="$2"; shift 2 ;;
	--from=*) from="${1#--from=}"; shift ;;
	--lintian) lintian=1; shift ;;
	-h|--help) usage ;;
	-*) echo "build-deb.sh: unknown option $1" >&2; usage ;;
	*) [ -z "$outdir" ] || usage; outdir="$1"; shift ;;
	esac
done
[ -n "$outdir" ] || usage

srcdir=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)

# Build-Depends, without version constraints or architecture lists;
# debhelper-compat is provided by debhelper.  Those marked <!nocheck> (the
# test tools) are left out when DEB_BUILD_PROFILES has nocheck.  Plus what
# dpkg-buildpackage itself needs.
build_deps() {
	local nocheck=0
	[[ " ${DEB_BUILD_PROFILES:-} " == *" nocheck "* ]] && nocheck=1
	sed -n '/^Build-Depends:/,/^[A-Z][A-Za-z-]*:/p' "$srcdir/debian/control" |
		sed -e '1s/^Build-Depends://' -e '/^[A-Z][A-Za-z-]*:/d' |
		tr ',' '\n' | sed -e 's/([^)]*)//g' -e 's/\[[^]]*\]//g' |
		if [ "$nocheck" = 1 ]; then grep -v '<!nocheck>'; else cat; fi |
		sed -e 's/<[^>]*>//g' -e 's/[[:space:]]//g' |
		sed -e 's/^debhelper-compat$/debhelper/' | grep -v '^$'
	echo build-essential
	echo dpkg-dev
}

missing=()
for p in $(build_deps); do
	if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then
		missing+=("$p")
	fi
done
if [ "$lintian" = 1 ] && ! command -v lintian >/dev/null; then
	missing+=(lintian)
fi
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "build-deb.sh: missing build dependencies: ${missing[*]}" >&2
		echo "build-deb.sh: install them (as root: apt-get install ${missing[*]})" >&2
		exit 1
	fi
	echo "build-deb.sh: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >&2 || true
	apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tpserver-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
copy="$work/tpserver"
mkdir "$copy"

# The files a clean checkout would have (plus files not yet committed, but
# nothing git ignores), never build directories; or REV's tree.
if [ -n "$from" ]; then
	git -C "$srcdir" archive --format=tar "$from" | tar -C "$copy" -xf - ||
		{ echo "build-deb.sh: cannot export revision $from" >&2; exit 1; }
elif git -C "$srcdir" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$srcdir" && git ls-files -z --cached --others --exclude-standard) |
		grep -zv -E '^(build[^/]*|obj-[^/]*|debian/(tpserver|tpclient|tmp|\.debhelper))/' |
		(cd "$srcdir" && xargs -0 -r cp --parents -P -t "$copy" --) 2>/dev/null || true
	# Files deleted in the work tree but still in the index make cp fail;
	# what matters is that the copy has a debian/ directory.
	[ -f "$copy/debian/control" ] || { echo "build-deb.sh: copying the tree failed" >&2; exit 1; }
else
	tar -C "$srcdir" --exclude=./.git --exclude='./build*' --exclude='./obj-*' -cf - . |
		tar -C "$copy" -xf -
fi

if [ -n "$version" ]; then
	entry="$work/changelog.entry"
	{
		echo "tpserver ($version) unstable; urgency=medium"
		echo
		echo "  * Version $version."
		echo
		echo " -- tpserver developers <tpserver@example.org>  $(date -R)"
		echo
	} >"$entry"
	cat "$entry" "$copy/debian/changelog" >"$copy/debian/changelog.new"
	mv "$copy/debian/changelog.new" "$copy/debian/changelog"
	# What tpserver --version, its start message and tpserver_build_info
	# report (CMake takes numbers only).
	if [[ "$version" =~ ^[0-9]+(\.[0-9]+){0,3}$ ]]; then
		sed -i -E "s/^(project\(tpserver VERSION )[0-9.]+/\1$version/" "$copy/CMakeLists.txt"
		grep -q "^project(tpserver VERSION $version " "$copy/CMakeLists.txt" ||
			{ echo "build-deb.sh: cannot set version $version in CMakeLists.txt" >&2; exit 1; }
	fi
fi

if [ -z "${DEB_BUILD_OPTIONS:-}" ] || ! [[ "$DEB_BUILD_OPTIONS" =~ parallel= ]]; then
	DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }parallel=$(nproc)"
	export DEB_BUILD_OPTIONS
fi

echo "build-deb.sh: building in $copy (DEB_BUILD_OPTIONS=$DEB_BUILD_OPTIONS)" >&2
(cd "$copy" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || {
	tail -n 80 "$work/build.log" >&2
	echo "build-deb.sh: dpkg-buildpackage failed (last lines above)" >&2
	exit 1
}
cp "$work/build.log" "$outdir/build.log"

shopt -s nullglob
built=("$work"/*.deb "$work"/*.buildinfo "$work"/*.changes)
[ ${#built[@]} -gt 0 ] || { echo "build-deb.sh: no package was produced" >&2; exit 1; }
cp "${built[@]}" "$outdir/"
for f in "${built[@]}"; do
	echo "$outdir/$(basename "$f")"
done

if [ "$lintian" = 1 ]; then
	for f in "${built[@]}"; do
		case "$f" in
		*.changes) lintian --pedantic --fail-on error,warning "$outdir/$(basename "$f")" >&2 ;;
		esac
	done
fi
