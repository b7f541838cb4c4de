"""The human output of every command on stdout: pack's summary, plan's estimate, verify's and restore's reports,
status, ls and info. Each function takes the library's report and prints (or returns) its lines; --json output is
the report's own ``to_json()`` and is not made here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ..format import short_fingerprint
from ..units import counted, format_duration, format_size

if TYPE_CHECKING:
    from ..info import DriveInfo, ListedEntry
    from ..packer import PackSummary
    from ..planner import Plan
    from ..restorer import DriveOutcome, RestoreReport, ShipmentStatus
    from ..verifier import DriveReport, VerifyReport

# verify's Status and Mode, and the planner, are imported by the functions that use them: rendering pack's summary
# must not load verify, nor verify's report the planner (see tests/test_cli.py, the command line loads only what a
# command uses).


def print_pack_summary(summary: PackSummary, quiet: bool) -> None:
    if not quiet:
        for skipped in summary.skipped:
            click.echo(f"sneakernet: warning: skipped {skipped['path']}: {skipped['reason']}", err=True)
        for path in summary.changed:
            click.echo(
                f"sneakernet: warning: {path} changed while it was read; its stored bytes are what was read", err=True
            )
    lines = [
        f"packed {counted(summary.files, 'file')}, {counted(summary.dirs, 'directory', 'directories')}, "
        f"{counted(summary.symlinks, 'symlink')}, {counted(summary.hardlinks, 'hard link')} "
        f"onto {counted(len(summary.drives), 'drive')}"
        + (f" ({summary.resumed_drives} kept from before)" if summary.resumed_drives else "")
        + (f" in {summary.lanes} lanes at once" if summary.lanes > 1 else ""),
        f"  in {format_size(summary.raw_bytes)}, out {format_size(summary.stored_bytes)} "
        f"(ratio {summary.ratio:.3f}; {format_size(summary.stored_raw_bytes)} stored uncompressed)",
        f"  {summary.seconds:.1f} s, {format_size(summary.raw_bytes / max(summary.seconds, 1e-9))}/s",
    ]
    sizes = sorted({drive["size"] for drive in summary.drives if drive.get("size")})
    if sizes:
        lines.append(f"  {_drive_sizes(sizes)}")
    if summary.excluded_entries:
        excluded = counted(summary.excluded_entries, "entry", "entries")
        lines.append(f"  excluded {excluded} ({format_size(summary.excluded_bytes)})")
    if summary.restore_record_left_out:
        lines.append("  left out .sneakernet: the record of the restore that made this tree, not data")
    if summary.skipped_count:
        lines.append(f"  skipped {counted(summary.skipped_count, 'entry', 'entries')} (see the warnings)")
    if summary.changed_count:
        lines.append(f"  {counted(summary.changed_count, 'file')} changed while read (exit code 1)")
    for drive in summary.drives:
        lane = f"  (lane {drive['lane']})" if summary.lanes > 1 else ""
        # With drives at once each drive's own rate tells a slow drive from the others.
        rate = drive.get("bytes_per_second") if summary.lanes > 1 else None
        speed = f", {format_size(rate)}/s" if rate else ""
        lines.append(f"  {drive['label']}: {drive['path']}  {format_size(drive['stored_bytes'])}{speed}{lane}")
    for drive in summary.parity_drives:
        kept = "  (kept from before)" if drive["kept"] else ""
        lines.append(f"  {drive['label']}: {drive['path']}  {format_size(drive['stored_bytes'])} of parity{kept}")
    if summary.parity_drives:
        total = len(summary.drives) + len(summary.parity_drives)
        lines.append(f"  any {len(summary.parity_drives)} of the {total} drives can be lost: the others rebuild them")
    if summary.continued_drives or summary.rewritten_bytes:
        lines.append(
            f"  resumed: {counted(summary.resumed_drives, 'finished drive')} kept, "
            f"{counted(summary.kept_segments, 'complete segment')} kept on "
            f"{counted(summary.continued_drives, 'unfinished drive')} ({format_size(summary.kept_bytes)} kept, "
            f"{format_size(summary.rewritten_bytes)} written again)"
        )
    if summary.encryption is not None:
        lines.append(f"  {_encrypted_to(summary.encryption)}")
    if summary.catalog_copy:
        # Only a swapped pack leaves the catalog on its last drive alone; lanes write it to every drive.
        where = "every drive" if summary.lanes > 1 else "the last drive"
        lines.append(f"  the catalog is on {where} and kept at {summary.catalog_copy}")
    lines.append(f"fingerprint: {summary.short_fingerprint}  (full: {summary.fingerprint})")
    click.echo("\n".join(lines))


def _encrypted_to(encryption: dict[str, Any]) -> str:
    """``encrypted (aes-256-gcm) to 2 recipients and a passphrase: ...``: how, and whom pack's summary says it can
    say (how many, never which key)."""
    to = [counted(encryption["recipients"], "recipient")] if encryption["recipients"] else []
    to += ["a passphrase"] if encryption["passphrase"] else []
    return (
        f"encrypted ({encryption['cipher']}) to {' and '.join(to)}: verify needs no key; names and contents need "
        "theirs (restore --identity FILE or --passphrase-file FILE)"
    )


def _drive_sizes(sizes: list[int]) -> str:
    """``drives of 8 TB (8,000,000,000,000 bytes)``: the size pack used, in the units of a drive's label."""
    if len(sizes) == 1:
        return f"drives of {format_size(sizes[0])} ({sizes[0]:,} bytes)"
    return f"drives of {format_size(sizes[0])} to {format_size(sizes[-1])} ({sizes[0]:,} to {sizes[-1]:,} bytes)"


def print_plan(result: Plan) -> None:
    data = format_size(result.data_bytes)
    lines = [
        f"{result.source}: {counted(result.files, 'file')}, {counted(result.dirs, 'directory', 'directories')}, "
        f"{counted(result.symlinks, 'symlink')}, {counted(result.hardlinks, 'hard link')}; {data} of data",
    ]
    if result.excluded_entries:
        excluded = counted(result.excluded_entries, "entry", "entries")
        lines.append(f"  excluded {excluded} ({format_size(result.excluded_bytes)})")
    lines.append(
        f"on drives: about {format_size(result.stored_bytes)} (ratio {result.ratio:.3f}, from a sample of "
        f"{format_size(result.sample_bytes)} in {counted(result.sample_pieces, 'piece')} of "
        f"{counted(result.sample_files, 'file')}, compressed at level {result.level})"
        + (", encrypted: each chunk's tag, sealed index and catalog counted" if result.encrypted else "")
    )
    worst = result.drives_if_nothing_compresses
    lines.append(
        f"drives of {format_size(result.drive_size)} ({format_size(result.capacity)} after the reserve): "
        f"{result.drives_needed} needed" + (f", {worst} if nothing compressed" if worst != result.drives_needed else "")
    )
    lines.extend(_fill_lines(result))
    lines.append(_room_line(result.drive_size))
    if result.drives_given is not None:
        verdict = (
            "enough"
            if result.drives_suffice
            else f"not enough: about {result.drives_needed - result.drives_given} more needed"
        )
        lines.append(f"  with {counted(result.drives_given, 'drive')}: {verdict}")
    for link in result.links:
        lines.append(f"{data}: {format_duration(link.seconds)} at {link.link.label}")
    how = (
        f"estimated from the sample on {counted(result.threads, 'thread')}; pack goes no faster than the source "
        "reads and the drives write: --rate sets that speed"
        if result.pack_rate_measured
        else "at the --rate given"
    )
    lines.append(f"packing: {format_duration(result.pack_seconds)} at {format_size(result.pack_rate)}/s ({how})")
    lines.extend(_at_once_lines(result))
    lines.extend(_parity_lines(result))
    lines.extend(f"note: {note}" for note in result.notes)
    click.echo("\n".join(lines))


def _parity_lines(result: Plan) -> list[str]:
    """With --parity M: the parity drives, their size, the room while packing, and what they survive."""
    parity = result.parity
    if parity is None:
        return []
    groups = f" ({parity.groups} groups, {parity.parity} each)" if parity.groups > 1 else ""
    fits = "fits" if parity.fits else "does NOT fit: give parity drives larger than the data drives"
    lines = [
        f"parity: {counted(parity.parity_drives, 'parity drive')}{groups} beside the "
        f"{counted(parity.data_drives, 'data drive')}, {parity.drives_total} drives in all: any {parity.parity} of "
        + (f"the {parity.drives_total}" if parity.groups == 1 else "each group's")
        + " drives can be lost or unreadable and the shipment still restores whole",
        f"  each parity drive: {format_size(parity.stored_bytes)} of parity, {format_size(parity.used_bytes)} on the "
        f"drive at most ({fits} a {format_size(result.drive_size)} drive)",
    ]
    if parity.accumulate_bytes:
        lines.append(
            f"  while packing: {format_size(parity.accumulate_bytes)} of local room for the parity as it adds up "
            "(--parity-dir; with --out, in OUT)"
        )
    return lines


def _at_once_lines(result: Plan) -> list[str]:
    """With --drive-speed: each step's time with --at-once drives at once, beside one drive at a time."""
    times = result.at_once
    if times is None:
        return []
    pack, verify, restore = times.one_at_a_time
    speed = format_size(times.drive_speed)
    limit = " (the CPU's pace, not the drives')" if times.pack_limited_by == "cpu" else ""
    lines = [
        f"with {counted(times.at_once, 'drive')} at once at {speed}/s each: pack {format_duration(times.pack_seconds)}"
        f"{limit}, verify {format_duration(times.verify_seconds)}, restore {format_duration(times.restore_seconds)} "
        "(the destination's own speed not counted)",
        f"  one drive at a time: pack {format_duration(pack)}, verify {format_duration(verify)}, "
        f"restore {format_duration(restore)}",
    ]
    if times.lanes < times.at_once:
        lines.append(f"  the walk has room for {counted(times.lanes, 'lane')} only: that many drives are busy at once")
    if times.drives != result.drives_needed:
        lines.append(f"  with {times.lanes} lanes, each filling its own drives: about {times.drives} drives needed")
    return lines


def _room_line(drive_size: int) -> str:
    """What a drive labelled ``drive_size`` leaves once formatted: --drive-size must be what is left, not the label."""
    from ..planner import filesystem_room

    room = {name: format_size(size) for name, size in filesystem_room(drive_size).items()}
    return (
        f"  a drive labelled {format_size(drive_size)} leaves about {room['ext4']} on ext4 ({room['ext4 -m 0']} with "
        f"mkfs.ext4 -m 0), {room['XFS']} on XFS, {room['NTFS']} on NTFS, {room['exFAT']} on exFAT: give "
        "--drive-size what df -B1 shows on the formatted drive"
    )


def _fill_lines(result: Plan) -> list[str]:
    """How full each drive is, consecutive drives of the same fill on one line."""
    runs: list[tuple[int, int, int, int]] = []  # first, last, percent, used bytes of the first
    for drive in result.drives:
        percent = round(drive.fill * 100)
        if runs and runs[-1][2] == percent and runs[-1][1] == drive.drive - 1:
            runs[-1] = (runs[-1][0], drive.drive, percent, runs[-1][3])
        else:
            runs.append((drive.drive, drive.drive, percent, drive.used_bytes))
    lines = []
    for first, last, percent, used in runs:
        which = f"drive {first}" if first == last else f"drives {first}-{last}"
        each = "" if first == last else " each"
        lines.append(f"  {which}: {percent}% full{each} ({format_size(used)})")
    return lines


#: How many hurt paths the human report lists per problem; --json lists them all.
SHOWN_PATHS = 10


def _paths_line(paths: list[str]) -> str:
    shown = ", ".join(paths[:SHOWN_PATHS])
    return shown + (f" and {len(paths) - SHOWN_PATHS} more" if len(paths) > SHOWN_PATHS else "")


def print_verify_report(report: VerifyReport, quiet: bool, shown: dict[int, tuple[str, int]] | None = None) -> None:
    """The drives not shown as they were checked, or changed since (only the end knows a drive of another
    shipment among them), then the summary line."""
    from ..verifier import Status

    shown = shown or {}
    for drive in report.drives:
        if (quiet and drive.status == Status.INTACT.value) or shown.get(id(drive)) == (
            drive.status,
            len(drive.problems),
        ):
            continue
        click.echo("\n".join(verify_drive_lines(drive)))
    for line in [*drive_set_lines(report), *recovery_lines(report)]:
        click.echo(line)
    hurt = sorted({p for r in report.drives for p in r.hurt_paths()})
    intact = sum(r.ok for r in report.drives)
    line = f"{intact} of {counted(len(report.drives), 'drive')} intact"
    strays = sum(r.status == Status.UNEXPECTED_FILES.value for r in report.drives)
    if strays:
        line += (
            f" ({strays} with files that are not part of {'it' if strays == 1 else 'them'}: nothing of the shipment "
            "is hurt; they are left alone, delete them if they are not yours)"
        )
    if hurt:
        line += f"; {counted(len(hurt), 'file')} hurt: ask the sender to resend them (--json lists chunks and paths)"
    click.echo(line)


def recovery_lines(report: VerifyReport) -> list[str]:
    """With parity drives given: whether the shipment is whole, recoverable or lost, and the files lost."""
    verdict = report.recovery
    if verdict is None:
        return []
    if verdict.status == "whole":
        parity = ", ".join(verdict.parity_drives) or "no parity drive that could be used"
        return [f"shipment: whole: all {verdict.data_drives} data drives given and intact (parity: {parity})"]
    lines = [f"shipment: {verdict.status}: {message}" for message in verdict.messages]
    if verdict.lost_paths:
        rest = len(verdict.lost_paths) - SHOWN_PATHS + verdict.lost_paths_more
        more = f" and {rest} more" if rest > 0 else ""
        lines.append(f"  files lost: {', '.join(verdict.lost_paths[:SHOWN_PATHS])}{more}")
    return lines


#: Drives named in a line of drives missing at most; the rest are counted.
LISTED_DRIVES = 10


def drive_set_lines(report: VerifyReport) -> list[str]:
    """What of the shipment the drives given are: drives given twice, and, when several of its drives were given,
    the drives the catalog lists that were not (each drive is checked alone, so those are not checked: verify
    them when they come)."""
    drive_set = report.drive_set
    if drive_set is None:
        return []
    lines = [
        f"{key.label} was given {len(given)} times ({', '.join(d.path for d in given)}): each was checked"
        for key, given in drive_set.duplicated().items()
    ]
    missing = drive_set.missing()
    # A drive verified alone as it arrives: the others are still to come, naming them would be noise.
    if missing and len(drive_set.present()) > 1:
        names = ", ".join(d.key.label for d in missing[:LISTED_DRIVES])
        if len(missing) > LISTED_DRIVES:
            names += f" and {len(missing) - LISTED_DRIVES} more"
        when = "it too when it arrives" if len(missing) == 1 else "them too when they arrive"
        lines.append(
            f"not given: {names} ({len(missing)} of the shipment's {counted(len(drive_set.listed), 'drive')}): "
            f"verify {when}"
        )
    return lines


def verify_drive_lines(drive: DriveReport) -> list[str]:
    lines = [_drive_headline(drive)]
    if drive.fingerprint_matched and drive.fingerprint:
        lines.append(
            f"  fingerprint matched: the drive belongs to shipment {short_fingerprint(drive.fingerprint)}, "
            "the one given"
        )
    for first, last, chunk, paths in _chunk_runs(drive):
        which = f"chunk {first}" if first == last else f"chunks {first}-{last}"
        lines.append(f"  damaged {which} in {chunk.segment} from byte {chunk.offset}: {chunk.reason}")
        if paths:
            lines.append(f"    hurts: {_paths_line(paths)}")
    for problem in drive.problems:
        warning = "warning: " if problem.kind == "unexpected_file" and drive.ok else ""
        lines.append(f"  {warning}{problem.message}")
        if problem.paths:
            lines.append(f"    hurts: {_paths_line(problem.paths)}")
    lines.extend(f"  note: {note}" for note in drive.notes)
    return lines


def _chunk_runs(drive: DriveReport) -> list[tuple[int, int, Any, list[str]]]:
    """Consecutive damaged chunks of one segment with one reason, as one line each: (first, last, chunk, paths)."""
    runs: list[tuple[int, int, Any, list[str]]] = []
    for chunk in sorted(drive.damaged_chunks, key=lambda c: c.id):
        if runs:
            first, last, head, paths = runs[-1]
            if chunk.id == last + 1 and (chunk.segment, chunk.reason) == (head.segment, head.reason):
                runs[-1] = (first, chunk.id, head, paths + [p for p in chunk.paths if p not in paths])
                continue
        runs.append((chunk.id, chunk.id, chunk, list(chunk.paths)))
    return runs


def _drive_headline(drive: DriveReport) -> str:
    from ..verifier import Mode

    name = f"{drive.label} ({drive.path})" if drive.label else drive.path
    of = f" of {drive.drives}" if drive.drives else ""
    where = f"drive {drive.drive}{of}, " if drive.drive else ""
    checked = f"{format_size(drive.bytes_checked)} in {counted(drive.chunks_checked, 'chunk')} checked"
    if drive.mode == Mode.QUICK.value:
        checked = "sizes and manifests checked (--quick)"
    elif drive.sample_percent is not None:
        checked += f" (a {drive.sample_percent:g}% sample of segments)"
    if drive.mode == Mode.DEEP.value:
        checked += f", {counted(drive.files_checked, 'whole file')} hashed"
    if drive.resumed:
        checked += ", resumed"
    status = drive.status.upper().replace("_", " ") if not drive.ok else "intact"
    if drive.unexpected and drive.ok:
        status += f", with {counted(len(drive.unexpected), 'unexpected file')}"
    return f"{name}: {status}: {where}{checked}"


def restore_drive_lines(drive: DriveOutcome) -> list[str]:
    name = f"{drive.label} ({drive.path})"
    if drive.status == "restored":
        done = f"{counted(drive.files, 'file')} complete ({format_size(drive.bytes)})"
        lines = [f"{name}: wrote {format_size(drive.written)}; {done}"]
    else:
        lines = [f"{name}: {drive.message}"]
    lines.extend(f"  not restored: {failed}" for failed in drive.failed)
    lines.extend(f"  not restored: {collision} on this case-insensitive destination" for collision in drive.collisions)
    if drive.replaced_count:
        shown = ", ".join(drive.replaced[:SHOWN_PATHS]) + (", ..." if drive.replaced_count > SHOWN_PATHS else "")
        lines.append(f"  replaced {counted(drive.replaced_count, 'file')} the destination held (--force): {shown}")
    return lines


def print_restore_report(report: RestoreReport, shown: set[str] | None = None) -> None:
    """The lines of the drives not shown as they went in (e.g. a drive of a finished restore, which nothing is
    done with), what the whole run leaves, then where the shipment stands."""
    for drive in report.drives:
        if drive.path not in (shown or set()):
            click.echo("\n".join(restore_drive_lines(drive)))
    for note in report.notes:
        click.echo(f"note: {note}")
    for problem in report.problems:
        click.echo(f"  not restored: {problem}")
    if report.setid_cleared:
        click.echo(
            f"setuid/setgid bits cleared on {counted(report.setid_cleared, 'file')} (--keep-setuid keeps them, for "
            "a shipment you trust)"
        )
    print_status(report.status)


def print_status(state: ShipmentStatus) -> None:
    if state.finished:
        click.echo(
            f"shipment {short_fingerprint(state.fingerprint)} complete: every file matched its BLAKE3 "
            f"(fingerprint {state.fingerprint})"
        )
        if state.finished_at:
            only = f" (--include {' '.join(state.includes)})" if state.includes else ""
            click.echo(f"  restored into {state.dest}{only}, finished {state.finished_at}")
        return
    done = ", ".join(map(str, state.restored)) or "none yet"
    needed = "; still needed:" if state.waiting else ""
    click.echo(f"{len(state.restored)} of {counted(state.drives, 'drive')} restored (drives {done}){needed}")
    for waiting in state.waiting:
        how = {
            "partial": "restore it again from a good copy",
            "blocked": "clear the way in the destination, then restore it again",
            "reopened": "restore it again (it carries the content of included hard links)",
        }.get(waiting.state, "still needed")
        click.echo(
            f"  drive {waiting.drive} ({waiting.label}): {how}: {counted(waiting.files, 'entry', 'entries')}, "
            f"{format_size(waiting.bytes)} wait on it"
        )
    if state.failed_count:
        failed = ", ".join(state.failed[:SHOWN_PATHS])
        click.echo(f"  {counted(state.failed_count, 'file')} could not be restored: {failed}")


def ls_line(entry: ListedEntry) -> str:
    """One path of ``ls``: kind, size, the drives that hold it, path."""
    numbers = entry.drives or (entry.first_drive, entry.last_drive)
    if list(numbers) == list(range(numbers[0], numbers[-1] + 1)):
        drives = str(numbers[0]) if len(numbers) == 1 else f"{numbers[0]}-{numbers[-1]}"
    else:  # format version 2: a lane's drives, not every number between (docs/format.md 19.4)
        drives = ",".join(map(str, numbers))
    return f"{entry.kind:8} {entry.size:>15} drive {drives:9} {entry.path}"


def print_info(found: DriveInfo) -> None:
    of = f" of {found.drives}" if found.drives else " (no catalog on this drive)"
    lines = [
        f"{found.label}: drive {found.drive}{of}, shipment {found.shipment}",
        f"  created {found.created} by {found.tool}",
        f"  {counted(found.segments, 'segment')}, {format_size(found.stored_bytes)} stored"
        + ("" if found.encrypted else f", {format_size(found.raw_bytes)} of data"),
    ]
    if found.lane is not None:
        of_lanes = f" of {found.lanes}" if found.lanes else ""
        lines.append(
            f"  format version {found.version}: lane {found.lane}{of_lanes}, drive {found.lane_seq} of the lane"
        )
    if found.encrypted:
        unknown = found.files is None
        lines.append(f"  encrypted{': names, sizes and contents need its key (--identity FILE)' if unknown else ''}")
    if found.fingerprint and found.files is not None:
        lines.append(
            f"  shipment: {counted(found.files or 0, 'file')}, {format_size(found.shipment_raw_bytes or 0)} of data, "
            f"{format_size(found.shipment_stored_bytes or 0)} on drives"
        )
    if found.fingerprint:
        lines.append(f"  fingerprint: {short_fingerprint(found.fingerprint)}  (full: {found.fingerprint})")
    click.echo("\n".join(lines))
