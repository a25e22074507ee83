package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/grpcchatter/grpcchatter/bench/internal/chatload"
)

// Runs lists the storm's results, before first.
func (j *JoinStorm) Runs() []*chatload.JoinStormResult {
	var out []*chatload.JoinStormResult
	if j.Before != nil {
		out = append(out, j.Before)
	}
	return append(out, j.After)
}

func (j *JoinStorm) markdown(b *strings.Builder) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## Join storm\n\n")
	p("%d members open a `Chat` stream in one room at once (%s), as clients reconnecting after a restart do, on a fresh chat process: ", j.Members, "64 opening at a time, 100 streams per client connection")
	p("the storm lasts from the first open until every member knows the whole room (its `Opened` listed them or a `Presence` event announced them). ")
	p("Server CPU is the chat process's (utime+stime from /proc/<pid>/stat) over the storm; frames and presence events are what the members received after their `Opened`.")
	if j.Before != nil {
		p(" Before is the chat service built at `%s`, after the one measured (%s), in the same run, one after the other.", j.BaseRev, j.Rev)
	}
	p("\n\n| Chat service | Server CPU (s) | Storm (s) | Opening (s) | Opened / failed | Ended / incomplete | Frames | Presence events |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range j.Runs() {
		name := r.Target
		if j.Before != nil && r == j.Before {
			name += " (before)"
		} else if j.Before != nil {
			name += " (after)"
		}
		p("| %s | %.2f | %.1f | %.1f | %d / %d | %d / %d | %d | %d |\n", name, r.ServerCPUSeconds, r.Seconds, r.OpenSeconds, r.Opened, r.Failed, r.Ended, r.Incomplete, r.Frames, r.PresenceEvents)
	}
	p("\n")
	if j.Before != nil && j.After.ServerCPUSeconds > 0 {
		p("The storm cost the chat process **%.1f×** less CPU after than before.\n\n", j.Before.ServerCPUSeconds/j.After.ServerCPUSeconds)
	}
	for _, r := range j.Runs() {
		if r.FirstError != "" {
			p("- %s: first error: `%s`\n", r.Target, r.FirstError)
		}
	}
	for _, pr := range j.Profiles {
		p("**%s** (%s)\n\n", pr.Name, pr.Source)
		if len(pr.Top) > 0 {
			p("```\n      flat  flat%%   sum%%        cum   cum%%\n%s\n```\n\n", strings.Join(pr.Top, "\n"))
		}
	}
}

func (j *JoinStorm) table(w io.Writer) {
	for _, r := range j.Runs() {
		fmt.Fprintf(w, "join storm %s: %d members, %.2f CPU-s, %.1f s, %d opened, %d failed, %d ended, %d incomplete, %d frames, %d presence events\n",
			r.Target, r.Members, r.ServerCPUSeconds, r.Seconds, r.Opened, r.Failed, r.Ended, r.Incomplete, r.Frames, r.PresenceEvents)
	}
}
