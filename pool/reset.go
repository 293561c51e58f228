package pool

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/deployer-dev/deployer/engine"
)

// resetScript ends every process of the job's user ($2) but the container's idle
// one ($1), empties every place a job can write, and fails unless it verified both.
// It runs as the job's user, who owns everything a job made: a job, without
// capabilities and without new privileges, makes no process of another user, so
// those are the worker's own (a deployment's relay), which outlive the job.
const resetScript = `
keep=" 1 $1 $$ " me=$2
strays() {
  out=""
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    case "$keep" in *" $p "*) continue ;; esac
    # Processes of this script's own pipeline are its children. A zombie is dead
    # already: init reaps it, on a busy machine some time after the kill.
    ppid="" state="" uid=""
    while read -r k v rest; do
      case "$k" in State:) state=$v ;; PPid:) ppid=$v ;; Uid:) uid=$v; break ;; esac
    done < "$d/status" 2>/dev/null
    [ -z "$ppid" ] && continue
    [ "$uid" = "$me" ] || continue
    [ "$ppid" = "$$" ] && continue
    [ "$state" = "Z" ] && continue
    out="$out $p"
  done
  echo "$out"
}
i=0
while s=$(strays); [ -n "$s" ]; do
  i=$((i+1))
  [ $i -gt 20 ] && { echo "processes survive: $s" >&2; exit 3; }
  # A process forked between the scan and the kill is caught by the next round.
  [ $i -gt 1 ] && sleep 0.05
  kill -9 $s 2>/dev/null
done
ipcrm --all 2>/dev/null
for dir in /work /tmp /dev/shm; do
  chmod -R u+rwX "$dir" 2>/dev/null
  find "$dir" -mindepth 1 -delete 2>/dev/null
  if [ -n "$(find "$dir" -mindepth 1 -print -quit 2>/dev/null)" ]; then
    echo "$dir is not empty" >&2; exit 4
  fi
done
exit 0
`

// reset runs the reset script in a container.
func (p *Pool) reset(ctx context.Context, m *member) error {
	var out bytes.Buffer
	code, err := p.eng.Exec(ctx, m.id, engine.ExecSpec{
		Cmd:    []string{"sh", "-c", resetScript, "reset", strconv.Itoa(m.mainPID), uidOf(m.user)},
		User:   m.user,
		Stdout: &out,
		Stderr: &out,
	})
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("exit %d: %s", code, strings.TrimSpace(out.String()))
	}
	return nil
}

// uidOf is the user id of a container's user ("uid" or "uid:gid"), "0" for none.
func uidOf(user string) string {
	uid, _, _ := strings.Cut(user, ":")
	if uid == "" {
		return "0"
	}
	return uid
}

// mainPID reads the container's idle process: the only child of PID 1 before any
// job ran.
func (p *Pool) mainPID(ctx context.Context, m *member) (int, error) {
	var out bytes.Buffer
	code, err := p.eng.Exec(ctx, m.id, engine.ExecSpec{
		Cmd:    []string{"cat", "/proc/1/task/1/children"},
		Stdout: &out,
	})
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(out.String())
	if code != 0 || len(fields) != 1 {
		return 0, fmt.Errorf("container %s: PID 1 has children %q", m.name, out.String())
	}
	return strconv.Atoi(fields[0])
}
