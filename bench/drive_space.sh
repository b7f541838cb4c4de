#!/bin/bash
# How much of a labelled drive each filesystem leaves for files: makes a sparse image of each size (decimal, as
# drives are labelled), formats it with each filesystem's defaults, mounts it and prints what `df -B1` calls
# Available. Needs root, loop devices, FUSE for exFAT (exfat-fuse) and NTFS (ntfs-3g), and
# e2fsprogs, exfatprogs, xfsprogs and ntfs-3g. Usage: bench/drive_space.sh [DIR] [SIZE_IN_BYTES ...]
# docs/faq.md ("How much of a drive can I use?") quotes what it printed.
set -euo pipefail
work=${1:-/var/tmp/sneakernet-drive-space}
shift || true
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100000000000 1000000000000 8000000000000)
mkdir -p "$work/mnt"
image="$work/drive.img"
trap 'mountpoint -q "$work/mnt" && umount "$work/mnt"; rm -f "$image"' EXIT

measure() {  # label size mkfs-command... ; prints label, size, available bytes, percent of the label
    local label=$1 size=$2
    shift 2
    rm -f "$image"
    truncate -s "$size" "$image"
    "$@" "$image" >/dev/null 2>&1
    # The FUSE drivers want a block device: a loop device over the image.
    local device
    device=$(losetup -f --show "$image")
    case $label in
        exfat*) mount.exfat-fuse "$device" "$work/mnt" >/dev/null ;;
        ntfs*) ntfs-3g "$device" "$work/mnt" ;;
        *) mount "$device" "$work/mnt" ;;
    esac
    local available
    available=$(df -B1 --output=avail "$work/mnt" | tail -1 | tr -d ' ')
    umount "$work/mnt"
    losetup -d "$device"
    printf '%-12s %16s %16s %8.3f%%\n' "$label" "$size" "$available" "$(echo "100 * $available / $size" | bc -l)"
}

printf '%-12s %16s %16s %9s\n' filesystem label_bytes available of_label
for size in "${sizes[@]}"; do
    measure ext4 "$size" mkfs.ext4 -q -F
    measure "ext4 -m 0" "$size" mkfs.ext4 -q -F -m 0
    measure exfat "$size" mkfs.exfat
    measure ntfs "$size" mkfs.ntfs -q -F -f
    measure xfs "$size" mkfs.xfs -q -f
done
