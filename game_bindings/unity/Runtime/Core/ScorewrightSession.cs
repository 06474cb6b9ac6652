// The engine-independent heart of the Unity package: game state out, audio and markers in.
using System;
using System.Collections.Generic;
using System.Threading;

namespace Scorewright.Core
{
    public enum AudioTransport
    {
        /// <summary>Shared-memory ring (same machine; lowest latency). Falls back to TCP when the
        /// server has no ring or it cannot be opened.</summary>
        Ring,
        /// <summary>`audio` messages on the framed TCP connection (works across machines).</summary>
        Tcp,
    }

    public sealed class SessionOptions
    {
        public string Host = "127.0.0.1";
        public int TcpPort = 7702;
        public AudioTransport Transport = AudioTransport.Ring;
        /// <summary>Stream audio kept waiting before playback starts (sample pairs at 48 kHz).
        /// The server writes each frame lookahead-1 frames (80 ms by default) before it is due, so
        /// 2 frames (3840) plays on time; add a frame for TCP across a network.</summary>
        public int CushionPairs = 3840;
        public string ClientName = "unity";
        /// <summary>The server's --token, when it was started with --host.</summary>
        public string Token;
        /// <summary>Longest wait between connection attempts, in ms.</summary>
        public int MaxRetryMs = 5000;
    }

    /// <summary>A beat/bar/transition/stinger marker, with the Unix time it will be heard.</summary>
    public struct Marker
    {
        public string Kind, Name;
        public long Position, Beat, Bar;
        public double Due;
    }

    /// <summary>
    /// One game's link to `scorewright serve`: a framed TCP connection for game state, replies and
    /// markers, plus the audio stream from the ring or from TCP. Thread use: Set*/Trigger/... from
    /// any thread; FillAudio from the audio thread only; DueMarkers from the game thread.
    /// </summary>
    public sealed class ScorewrightSession : IDisposable
    {
        readonly SessionOptions options;
        readonly FramedTcpConnection connection;
        readonly AudioFifo tcpAudio = new AudioFifo();
        readonly StreamPlayer player;
        readonly List<Marker> markers = new List<Marker>();
        int nextId;
        volatile RingReader ring;
        volatile bool wantTcpAudio;

        /// <summary>The latest `status` from the server (on connect and whenever asked).</summary>
        public Dictionary<string, object> Status { get; private set; }
        /// <summary>Every reply (ok/error/status), on the connection thread.</summary>
        public event Action<Dictionary<string, object>> ReplyReceived;
        /// <summary>`error` messages, including map errors pushed by the server.</summary>
        public event Action<string, string> ErrorReceived;
        public bool Connected { get { return connection.Connected; } }
        public string LastError { get { return connection.LastError; } }
        public AudioTransport ActiveTransport { get { return ring != null ? AudioTransport.Ring : AudioTransport.Tcp; } }
        public long Underruns { get { return player.Underruns; } }
        public long AudioMessages { get; private set; }
        /// <summary>Sequence gaps seen in TCP audio (frames the network path lost).</summary>
        public long LostFrames { get; private set; }
        long lastSeq = -1;

        public ScorewrightSession(SessionOptions options)
        {
            this.options = options;
            player = new StreamPlayer(options.CushionPairs);
            wantTcpAudio = options.Transport == AudioTransport.Tcp;
            connection = new FramedTcpConnection(options.Host, options.TcpPort, Hello) { MaxBackoffMs = options.MaxRetryMs };
            connection.MessageReceived += OnMessage;
        }

        public void Start() { connection.Start(); }

        // ------------------------------------------------------------ game state out
        public int SetParam(string param, double value)
        {
            return Send("set", "param", param, "value", value);
        }

        public int SetState(string group, string value)
        {
            return Send("state", "group", group, "value", value);
        }

        public int Trigger(string eventName)
        {
            return Send("event", "name", eventName);
        }

        public int Notes(int[] on, int[] off = null)
        {
            return Send("notes", "on", ToList(on), "off", ToList(off));
        }

        /// <summary>Blend a text style in at `weight` (0 removes it).</summary>
        public int Prompt(string text, double weight = 1.0, string name = null)
        {
            return name == null ? Send("prompt", "text", text, "weight", weight)
                                : Send("prompt", "text", text, "weight", weight, "name", name);
        }

        /// <summary>`play`, `pause` or `stop`.</summary>
        public int Transport(string cmd) { return Send("transport", "cmd", cmd); }

        public int RequestStatus() { return Send("status"); }

        /// <summary>Send a message of `type` with alternating field names and values; returns its
        /// id (replies carry it), or -1 while disconnected.</summary>
        public int Send(string type, params object[] fields)
        {
            int id = Interlocked.Increment(ref nextId);
            var msg = new Dictionary<string, object> { { "type", type }, { "id", id } };
            for (int i = 0; i + 1 < fields.Length; i += 2)
                if (fields[i + 1] != null) msg[(string)fields[i]] = fields[i + 1];
            return connection.Send(msg) ? id : -1;
        }

        static List<object> ToList(int[] notes)
        {
            if (notes == null) return null;
            var list = new List<object>(notes.Length);
            foreach (var n in notes) list.Add((long)n);
            return list;
        }

        // ------------------------------------------------------------ audio in
        /// <summary>Fill an engine audio buffer (interleaved, any channel count and rate). Returns
        /// the frames that came from the stream; the rest is silence (counted in Underruns).</summary>
        public int FillAudio(float[] output, int channels, int outputRate)
        {
            var r = ring;
            try
            {
                if (r == null) return player.Fill(tcpAudio, output, channels, outputRate);
                if (r.WriterClosed || r.HeartbeatAge > 1.0) return Silence(output);   // server gone
                return player.Fill(r, output, channels, outputRate);
            }
            catch (ObjectDisposedException)
            {
                return Silence(output);        // shutting down
            }
        }

        static int Silence(float[] output)
        {
            Array.Clear(output, 0, output.Length);
            return 0;
        }

        /// <summary>Markers whose sound has reached the speakers by `nowUnix` (call every frame
        /// from the game thread; fire beat/bar events for them).</summary>
        public List<Marker> DueMarkers(double nowUnix, double outputLatency = 0)
        {
            var due = new List<Marker>();
            lock (markers)
            {
                for (int i = 0; i < markers.Count; i++)
                    if (markers[i].Due + outputLatency <= nowUnix) due.Add(markers[i]);
                markers.RemoveAll(m => m.Due + outputLatency <= nowUnix);
            }
            return due;
        }

        public static double UnixNow()
        {
            return (DateTime.UtcNow - UnixEpoch).TotalSeconds;
        }

        internal static readonly DateTime UnixEpoch = new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc);

        // ------------------------------------------------------------ connection thread
        Dictionary<string, object> Hello()
        {
            var hello = new Dictionary<string, object>
            {
                { "type", "hello" }, { "id", "hello" }, { "v", 1 }, { "client", options.ClientName },
                { "want_audio", wantTcpAudio }, { "markers", true },
            };
            if (!string.IsNullOrEmpty(options.Token)) hello["token"] = options.Token;
            return hello;
        }

        void OnMessage(Dictionary<string, object> msg)
        {
            string type = Get<string>(msg, "type");
            switch (type)
            {
                case "audio": OnAudio(msg); return;
                case "marker": OnMarker(msg); return;
                case "status":
                    Status = msg;
                    if (Get<string>(msg, "id") == "hello") OnHelloStatus(msg);
                    break;
                case "error":
                    var handler = ErrorReceived;
                    if (handler != null) handler(Get<string>(msg, "code"), Get<string>(msg, "message"));
                    break;
            }
            var replies = ReplyReceived;
            if (replies != null) replies(msg);
        }

        /// <summary>The server's answer to hello tells where its ring is: open it (again, after a
        /// reconnect: a restarted server makes a new ring), or fall back to TCP audio (the server
        /// may be on another machine).</summary>
        void OnHelloStatus(Dictionary<string, object> status)
        {
            if (options.Transport != AudioTransport.Ring || wantTcpAudio) return;
            string path = Get<string>(status, "ring");
            RingReader opened = null;
            try
            {
                if (path != null) opened = new RingReader(path, 0);
            }
            catch (Exception) { /* not on this machine, or not readable: use TCP */ }
            if (opened == null)
            {
                wantTcpAudio = true;
                connection.Send(Hello());
                return;
            }
            // the audio thread may be inside the old reader right now: retire it, free it later
            if (retired != null) retired.Dispose();
            retired = ring;
            ring = opened;
        }

        RingReader retired;

        void OnAudio(Dictionary<string, object> msg)
        {
            var pcm = Get<byte[]>(msg, "pcm");
            if (pcm == null) return;
            long seq = (long)Number(msg, "seq");
            if (lastSeq >= 0 && seq > lastSeq + 1) LostFrames += seq - lastSeq - 1;
            lastSeq = seq;
            AudioMessages++;
            var samples = new float[pcm.Length / 4];
            Buffer.BlockCopy(pcm, 0, samples, 0, samples.Length * 4);     // little-endian hosts
            tcpAudio.Push(samples, samples.Length / 2);
            var tap = AudioReceived;
            if (tap != null) tap(seq, pcm);
        }

        /// <summary>Raw TCP audio as it arrives (seq, float32 LE bytes): for tests and recorders.</summary>
        public event Action<long, byte[]> AudioReceived;

        void OnMarker(Dictionary<string, object> msg)
        {
            var m = new Marker
            {
                Kind = Get<string>(msg, "kind"), Name = Get<string>(msg, "name"),
                Position = (long)Number(msg, "pos"), Beat = (long)Number(msg, "beat"),
                Bar = (long)Number(msg, "bar"), Due = Number(msg, "due"),
            };
            lock (markers)
            {
                if (markers.Count < 1024) markers.Add(m);    // a game that never drains them
            }
        }

        static T Get<T>(Dictionary<string, object> msg, string key) where T : class
        {
            object v;
            return msg.TryGetValue(key, out v) ? v as T : null;
        }

        /// <summary>A numeric field (msgpack ints decode to long, floats to double); 0 when absent
        /// or not a number.</summary>
        static double Number(Dictionary<string, object> msg, string key)
        {
            object v;
            if (!msg.TryGetValue(key, out v)) return 0;
            if (v is long) return (long)v;
            if (v is double) return (double)v;
            return v is ulong ? (ulong)v : 0;
        }

        /// <summary>The ring reader, when audio comes from the ring (for diagnostics).</summary>
        public RingReader Ring { get { return ring; } }

        public void Dispose()
        {
            connection.Dispose();
            var r = ring;
            ring = null;
            if (r != null) r.Dispose();
            if (retired != null) retired.Dispose();
        }
    }
}
