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
// goroutine and a queue bounded in packets and bytes (a full queue drops UDP
// packets, which the demuxer sees as a loss, and makes a TCP connection
// wait), each TCP connection its own goroutine with read deadlines, a TCP
// connection must name an expected SSRC within HandshakeTimeout, at most
// MaxPendingConns connections wait to do so (the oldest is closed for a
// new one), RTP over TCP is framed per RFC 4571, so a frame is at most
// 64 KiB, and packets with an SSRC nobody expects are counted per source
// address in a bounded table (which is how WaitStart tells a wrong SSRC).
//
// Over UDP a receiver holds up to ReorderWindow packets to put them back in
// order (also at the start, so that a packet overtaken by the first one to
// arrive is not lost), drops duplicates, and tells the demuxer of the
// packets it gives up on after 80 ms. The RTP marker bit, which devices set
// on the last packet of a picture, hands the picture on at once (unless it
// falls inside a PES packet: some devices set it on every packet).
package media
