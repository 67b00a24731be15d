// Package ingest pulls every camera's RTSP streams once (or has pushed
// cameras' streams played when needed) and hands their video and audio to
// everyone else through an in-memory hub. It imports none of
// Vigil's other packages: the relay, the recorder and the HTTP API build on it.
//
// The rooms:
//
//   - [Camera] (camera.go) is one registered camera, the unit of configuration
//     that the registry stores and the rest of Vigil passes around.
//   - [Fleet] (fleet.go) runs the cameras: [Fleet.Set] and [Fleet.Remove]
//     start, reconfigure and stop a camera's pullers, [Fleet.Stream] finds its
//     hub stream, [Fleet.Status] says how it is doing.
//   - A puller (puller.go, session.go) is one RTSP session per stream, built on
//     gortsplib: connect, DESCRIBE, SETUP, PLAY, then unit by unit into the
//     hub; on a failure it waits with capped exponential backoff and jitter and
//     connects again. Why a camera is offline is a [PullError] with a sentence a
//     person can read (errors.go).
//   - A pushed camera (Camera.Pushed: a GB/T 28181 channel) is not pulled: a
//     [Source] (FleetOptions.Sources, push.go) plays it into a [Sink], one
//     session at a time, and only while the stream is demanded — subscribed
//     to, or wanted ([Stream.Want]). PushLinger after the last demand its
//     session ends and it is idle ([StateIdle], no failure). The puller's
//     machinery is shared: state and last error, backoff, stall detection,
//     PTS and wall-clock continuity across sessions. With
//     FleetOptions.SubLinger the cameras' sub-streams are pulled on demand
//     the same way (SubLinger after the last viewer).
//   - The hub (hub.go) is a [Stream] per camera stream: one writer (the puller)
//     and any number of [Subscription]s, each with its own bounded queue. A
//     [Unit] is one immutable access unit shared by pointer. Writing never
//     blocks: a subscriber whose queue is full loses units up to the next
//     keyframe and is told of the gap (the recorder asks for a deep queue). A
//     new subscriber starts at the next keyframe, or from the cached current
//     GOP when it asks for one.
//   - tracks.go and params.go turn RTP into access units and keep the H.264 and
//     H.265 parameter sets; [Probe] (probe.go) answers "test connection".
//
// A typical consumer:
//
//	fleet := ingest.NewFleet(ingest.FleetOptions{Log: log})
//	fleet.Set(cam)
//	go fleet.Run(ctx)
//	sub := fleet.Stream(cam.ID, ingest.Main).Subscribe(ingest.SubscribeOptions{})
//	defer sub.Close()
//	for {
//		u, gap, err := sub.Next(ctx)
//		...
//	}
package ingest
