// Package media receives the video of GB/T 28181 devices: MPEG-PS over RTP
// on one UDP socket and one TCP listener (gb28181.mediaPort) shared by every
// device, the streams told apart by their SSRC.
//
// The gateway calls Server.Expect with the SSRC it writes into the INVITE's
// "y=" line before it sends the INVITE, and gets a Receiver. RTP packets
// with that SSRC — on UDP, or on a TCP connection the device opens to the
// media port (tcp-passive) whose first packet carries it, or on a connection
// Receiver.Dial opens to the device (tcp-active) — are put back in order
// (UDP), their gaps told to the MPEG-PS demuxer (gb28181/ps) as losses,
// and the demuxed access units given to Receiver.OnUnit.
//
// Every failure has a typed cause (*MediaError) a person can act on: the
// device answered but sent no RTP on the negotiated transport, it sent RTP
// with another SSRC than the one it was given, its PS has no PSM or an
// unknown codec, its TCP connection closed, or the stream stopped.
//
// Hostile or broken peers cannot hurt the others: each receiver has its own
// bounded packet queue and goroutine (a full queue drops, which the demuxer
// sees as a loss), each TCP connection its own goroutine with read
// deadlines, a TCP connection must name an expected SSRC within
// HandshakeTimeout, the number of such connections is bounded, and RTP over
// TCP is framed per RFC 4571, so a frame is at most 64 KiB.
package media
