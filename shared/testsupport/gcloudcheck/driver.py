# Checks gcloud command lines with the installed Google Cloud CLI's own argument parser,
# without running them: no credentials, no network, nothing changed. Part of fediops'
# shared/testsupport/gcloudcheck (see gcloudcheck.go), run with the SDK's Python:
#
#   python3 driver.py SDK_ROOT < lines.jsonl > verdicts.jsonl
#
# Each input line is {"kind": "command" | "mention", "args": [...]} (the words after
# "gcloud"); each output line is {"path": "gcloud.x.y", "error": "..."} in the same order.
#
#   command  the whole line is parsed as `gcloud ARGS` would parse it before running: the
#            command path, every flag and its value (types, choices, durations, sizes),
#            positional arguments, required and mutually exclusive groups, and resource
#            arguments. An error is what gcloud would print before exiting with status 2.
#   mention  a command named in prose (`gcloud functions deploy --trigger-topic`): the
#            leading words must be a command or group and every --flag must be one of its
#            flags; values and required arguments are not checked.
#
# It boots the CLI the way lib/gcloud.py does, then uses calliope's parser directly
# (CLI.Execute would parse and then run the command).

import json
import os
import sys
import tempfile


def main():
  root = sys.argv[1]
  sys.path.insert(0, os.path.join(root, 'lib'))
  import gcloud as launcher  # pylint: disable=g-import-not-at-top
  sys.path = launcher.reorder_sys_path(sys.path)
  launcher._fix_google_module()  # pylint: disable=protected-access
  from googlecloudsdk import gcloud_main  # pylint: disable=g-import-not-at-top

  out = os.fdopen(os.dup(1), 'w')
  with Captured():
    cli = gcloud_main.CreateCLI([])
  top = cli._TopElement()  # pylint: disable=protected-access
  for line in sys.stdin:
    req = json.loads(line)
    cap = Captured()
    try:
      with cap:
        if req['kind'] == 'mention':
          path, error = mention(top, req['args'])
        else:
          path, error = command(top, req['args'])
    except BaseException as e:  # pylint: disable=broad-except
      path, error = None, describe(e)
    if error is not None:
      error = (cap.text.strip() or error).replace('\r', '')
    out.write(json.dumps({'path': path, 'error': error}) + '\n')
    out.flush()


def command(top, args):
  """Parses args as gcloud would before running them."""
  parser = top._parser  # pylint: disable=protected-access
  try:
    ns = parser.parse_args(args, raise_error=True)
    if ns.CONCEPT_ARGS is not None:
      ns.CONCEPT_ARGS.ParseConcepts()
    if ns.CONCEPTS is not None:
      ns.CONCEPTS.Reset()
  except SystemExit as e:
    return None, 'exit status %s' % e.code
  except Exception as e:  # pylint: disable=broad-except
    return None, describe(e)
  return '.'.join(ns._GetCommand().GetPath()), None  # pylint: disable=protected-access


def mention(top, args):
  """Checks that args name a command or group and only flags it has."""
  element, words = top, ['gcloud']
  i = 0
  while i < len(args) and not args[i].startswith('-') and element.is_group:
    sub = element.LoadSubElement(args[i])
    if sub is None:
      return None, '%s has no command or group %r' % (' '.join(words), args[i])
    element = sub
    words.append(args[i])
    i += 1
  if len(words) == 1:
    return None, 'no command named'
  options = element._parser._option_string_actions  # pylint: disable=protected-access
  for a in args[i:]:
    if a.startswith('--'):
      flag = a.split('=', 1)[0]
      if flag not in options:
        return None, '%s has no flag %s' % (' '.join(words), flag)
  return '.'.join(words), None


def describe(e):
  return '%s: %s' % (type(e).__name__, e)


class Captured(object):
  """Sends file descriptors 1 and 2 to a temporary file; text holds what was written."""

  def __enter__(self):
    sys.stdout.flush()
    sys.stderr.flush()
    self.file = tempfile.TemporaryFile(mode='w+b')
    self.saved = [os.dup(1), os.dup(2)]
    os.dup2(self.file.fileno(), 1)
    os.dup2(self.file.fileno(), 2)
    self.text = ''
    return self

  def __exit__(self, *unused):
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(self.saved[0], 1)
    os.dup2(self.saved[1], 2)
    for fd in self.saved:
      os.close(fd)
    self.file.seek(0)
    self.text = self.file.read().decode('utf-8', 'replace')
    self.file.close()
    return False


if __name__ == '__main__':
  main()
