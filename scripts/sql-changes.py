#!/usr/bin/env python3
"""Prints the statements of the current install script that a released one lacks, in the
form an update script needs them (CREATE OR REPLACE FUNCTION for changed functions and
CREATE OR REPLACE VIEW for changed views, with their comments), as a starting point for
db_virtuoso--<released>--<current>.sql.  Tables are flagged for a hand-written ALTER TABLE.
test/t/070_upgrade.pl checks the result: an updated extension must equal a fresh install.

    make db_virtuoso--0.2.0.sql
    scripts/sql-changes.py db_virtuoso--0.1.0.sql db_virtuoso--0.2.0.sql
"""
import re
import sys


def statements(sql):
    """Splits SQL into statements, minding quotes, dollar quotes and comments."""
    out, cur, i, n = [], [], 0, len(sql)
    while i < n:
        if sql.startswith('--', i):
            j = sql.find('\n', i)
            j = n if j < 0 else j
            cur.append(sql[i:j])
            i = j
            continue
        if sql[i] == "'":
            j = i + 1
            while True:
                j = sql.find("'", j)
                if j + 1 < n and sql[j + 1] == "'":
                    j += 2
                    continue
                break
            cur.append(sql[i:j + 1])
            i = j + 1
            continue
        m = re.match(r'\$[A-Za-z_]*\$', sql[i:])
        if m:
            j = sql.find(m.group(0), i + len(m.group(0))) + len(m.group(0))
            cur.append(sql[i:j])
            i = j
            continue
        cur.append(sql[i])
        if sql[i] == ';':
            out.append(''.join(cur))
            cur = []
        i += 1
    if ''.join(cur).strip():
        out.append(''.join(cur))
    return [without_leading_comments(s) for s in out]


def without_leading_comments(s):
    lines = s.strip().split('\n')
    while lines and lines[0].strip().startswith('--'):
        lines.pop(0)
    return '\n'.join(lines).strip()


def comparable(s):
    return '\n'.join(l for l in s.split('\n') if not l.strip().startswith('--')).strip()


def object_of(s):
    m = re.match(r'CREATE (?:OR REPLACE )?(VIEW|FUNCTION|PROCEDURE|TABLE)\s+([\w.]+)', s)
    return (m.group(1), m.group(2)) if m else None


def main(released_path, current_path, hand_written_path=None):
    released = {comparable(s) for s in statements(open(released_path).read())}
    # Statements the update script already has above its marker (a table created by hand
    # there so that existing rows can be moved into it) are not repeated.
    if hand_written_path:
        text = ''.join(l for l in open(hand_written_path) if not l.startswith('\\'))
        released |= {comparable(s) for s in statements(text)}
    released_objects = {object_of(s) for s in released if object_of(s)}
    current = statements(open(current_path).read())
    printed = False
    for s in current:
        key = comparable(s)
        if key in released or s.startswith(('\\echo', 'CREATE SCHEMA', 'SET LOCAL')):
            continue
        obj = object_of(key)
        if obj in released_objects:
            kind, name = obj
            if kind == 'TABLE':
                print(f'-- {name} changed: write its ALTER TABLE by hand\n')
                continue
            if kind == 'VIEW':
                # Replaced in place: the privileges a DBA granted on it stay.  A view whose
                # columns change type or order cannot be (070_upgrade then fails): write its
                # DROP VIEW above the marker, with the grants it must keep.
                print(re.sub(r'^CREATE VIEW', 'CREATE OR REPLACE VIEW', s) + '\n')
                printed = True
                continue
            s = re.sub(r'^CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION', s)
        print(s + '\n')
        printed = True
    if printed:
        # New objects get PUBLIC's default privileges: take them back, as a fresh install does
        # last (src/pg/privileges.sql).
        for line in open(current_path).read().split('\n'):
            if line.startswith('REVOKE ALL ON ALL '):
                print(line)


if __name__ == '__main__':
    main(*sys.argv[1:4])
