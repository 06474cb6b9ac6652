// Checks Scorewright.Core outside Unity (compiled with mono's mcs by tests/test_unity_core.py).
//
//   CoreTests.exe golden GOLDEN.json           codec: every golden case decodes and re-encodes
//                                               to the same bytes
//   CoreTests.exe player                        resampler: 48 kHz -> 44.1 kHz, mono/stereo/5.1
//   CoreTests.exe live PORT SECONDS OUT.json    against a running `scorewright serve`: reads the
//                                               ring and TCP audio for SECONDS, sends game state,
//                                               writes per-frame CRC-32s and what it saw
//   CoreTests.exe reconnect PORT                prints "ready", then expects the server
//                                               to be killed and restarted: reconnects, reopens
//                                               the new ring, plays again
//   CoreTests.exe launch BUNDLE MAP             ServerLauncher starts the shipped server, plays,
//                                               stops it; starts a second, prints "ready PID
//                                               PORT" and waits to be killed
//
// Prints "ok ..." lines; any failure prints "FAIL ..." and exits 1.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;
using Scorewright.Core;

static class CoreTests
{
    static int failures;

    static void Check(bool ok, string what)
    {
        Console.WriteLine((ok ? "ok " : "FAIL ") + what);
        if (!ok) failures++;
    }

    static int Main(string[] args)
    {
        Thread.CurrentThread.CurrentCulture = CultureInfo.InvariantCulture;
        switch (args.Length > 0 ? args[0] : "")
        {
            case "golden": Golden(args[1]); break;
            case "player": Player(); break;
            case "live": Live(int.Parse(args[1]), double.Parse(args[2]), args[3]); break;
            case "reconnect": Reconnect(int.Parse(args[1])); break;
            case "launch": Launch(args[1], args[2]); break;
            default: Console.Error.WriteLine("usage: CoreTests golden FILE | player | live PORT SECONDS OUT"); return 2;
        }
        return failures == 0 ? 0 : 1;
    }

    // ------------------------------------------------------------------ codec
    static void Golden(string path)
    {
        var text = File.ReadAllText(path);
        var cases = Regex.Matches(text, "\"name\": \"([^\"]+)\",\\s*\"direction\": \"([^\"]+)\",[\\s\\S]*?\"hex\": \"([0-9a-f]*)\"");
        Check(cases.Count >= 20, "golden file has " + cases.Count + " cases");
        foreach (Match c in cases)
        {
            byte[] bytes = FromHex(c.Groups[3].Value);
            string again;
            try { again = ToHex(MsgPack.Encode(MsgPack.Decode(bytes))); }
            catch (MsgPackException e) { again = "error: " + e.Message; }
            Check(again == c.Groups[3].Value, "golden " + c.Groups[1].Value + " round-trips byte for byte");
        }
        var set = (Dictionary<string, object>)MsgPack.Decode(FromHex(Find(cases, "set")));
        Check(set["value"] is double && (double)set["value"] == 0.75 && set["id"] is long, "set decodes to double value and long id");
        var built = new Dictionary<string, object> { { "type", "set" }, { "id", 2 }, { "param", "danger" }, { "value", 0.75 } };
        Check(ToHex(MsgPack.Encode(built)) == Find(cases, "set"), "a set built in C# encodes to the golden bytes");
        foreach (var bad in new[] { "", "92", "dc0010", "c4ff00", "d9", "c1", "81a17a" })
        {
            bool threw = false;
            try { MsgPack.Decode(FromHex(bad)); } catch (MsgPackException) { threw = true; }
            Check(threw, "malformed '" + bad + "' is refused with MsgPackException");
        }
    }

    static string Find(MatchCollection cases, string name)
    {
        foreach (Match c in cases) if (c.Groups[1].Value == name) return c.Groups[3].Value;
        throw new KeyNotFoundException(name);
    }

    // ------------------------------------------------------------------ resampler
    sealed class Sine : IAudioSource
    {
        long pos;
        public int Available { get { return 48000; } }
        public int Read(float[] dest, int offset, int pairs)
        {
            for (int i = 0; i < pairs; i++, pos++)
            {
                float v = (float)Math.Sin(2 * Math.PI * 440 * pos / 48000.0);
                dest[offset + 2 * i] = v;
                dest[offset + 2 * i + 1] = 0.5f * v;
            }
            return pairs;
        }
    }

    static void Player()
    {
        foreach (int channels in new[] { 1, 2, 6 })
        {
            var player = new StreamPlayer(1920);
            var src = new Sine();
            var block = new float[441 * channels];
            var left = new List<float>();
            int total = 0;
            for (int b = 0; b < 200; b++)          // 2 s at 44.1 kHz in 10 ms blocks
            {
                total += player.Fill(src, block, channels, 44100);
                for (int i = 0; i < 441; i++) left.Add(block[i * channels]);
            }
            int crossings = 0;
            float maxStep = 0;
            for (int i = 1; i < left.Count; i++)
            {
                if (left[i - 1] < 0 && left[i] >= 0) crossings++;
                maxStep = Math.Max(maxStep, Math.Abs(left[i] - left[i - 1]));
            }
            double hz = crossings / 2.0;
            // 440 Hz at 44.1 kHz moves at most 2*pi*440/44100 = 0.063 per sample
            Check(total == 200 * 441 && Math.Abs(hz - 440) < 3 && maxStep < 0.07 && player.Underruns == 0,
                  string.Format("{0}-channel 44.1 kHz output: {1} frames, {2:F1} Hz, max step {3:F3}, no underruns",
                                channels, total, hz, maxStep));
        }
    }

    // ------------------------------------------------------------------ live server
    static void Live(int port, double seconds, string outPath)
    {
        // 1. raw ring reads, frame-aligned, for checksums (the ring has one reader: this one)
        var probe = new ScorewrightSession(new SessionOptions { TcpPort = port, Transport = AudioTransport.Tcp, ClientName = "core-tests" });
        var acks = new Dictionary<int, Dictionary<string, object>>();
        var tcpCrc = new SortedDictionary<long, uint>();
        var markerKinds = new List<string>();
        probe.ReplyReceived += m => { object id; if (m.TryGetValue("id", out id) && id is long) lock (acks) acks[(int)(long)id] = m; };
        probe.AudioReceived += (seq, pcm) => { lock (tcpCrc) tcpCrc[seq] = Crc32(pcm); };
        probe.Start();
        var until = DateTime.UtcNow.AddSeconds(20);
        while (probe.Status == null && DateTime.UtcNow < until) Thread.Sleep(20);
        Check(probe.Status != null, "connected and got status over framed TCP");
        if (probe.Status == null) return;
        string ringPath = probe.Status["ring"] as string;
        Check(ringPath != null && File.Exists(ringPath), "status names the ring " + ringPath);

        var ringCrc = new SortedDictionary<long, uint>();
        using (var ring = new RingReader(ringPath, 0))
        {
            var frame = new float[1920 * 2];
            var bytes = new byte[1920 * 8];
            long start = ring.ReadPos;
            Check(start % 1920 == 0, "joining the ring lands on a frame boundary");
            var end = DateTime.UtcNow.AddSeconds(seconds);
            int sent = 0;
            while (DateTime.UtcNow < end)
            {
                if (ring.Available >= 1920)
                {
                    long pos = ring.ReadPos;
                    ring.Read(frame, 0, 1920);
                    Buffer.BlockCopy(frame, 0, bytes, 0, bytes.Length);
                    ringCrc[pos / 1920] = Crc32(bytes);
                }
                else Thread.Sleep(2);
                if (sent < 4 && DateTime.UtcNow > end.AddSeconds(-seconds + 1 + sent))
                {
                    switch (sent)
                    {
                        case 0: probe.SetParam("danger", 0.8); break;
                        case 1: probe.SetState("area", "cave"); break;
                        case 2: probe.SetState("area", "volcano"); break;      // not in the map
                        case 3: probe.RequestStatus(); break;
                    }
                    sent++;
                }
            }
        }
        Thread.Sleep(300);
        probe.Dispose();
        Thread.Sleep(200);

        // 2. the high-level session playing the ring at 44.1 kHz, as Unity's audio thread would
        var session = new ScorewrightSession(new SessionOptions { TcpPort = port, Transport = AudioTransport.Ring, ClientName = "core-tests-ring" });
        session.Start();
        var buffer = new float[1024 * 2];
        long streamed = 0;
        double peak = 0;
        var stop = DateTime.UtcNow.AddSeconds(3);
        var nextBlock = DateTime.UtcNow;
        while (DateTime.UtcNow < stop)
        {
            if (DateTime.UtcNow < nextBlock) { Thread.Sleep(1); continue; }
            nextBlock = nextBlock.AddMilliseconds(1024 * 1000.0 / 44100);
            streamed += session.FillAudio(buffer, 2, 44100);
            foreach (var v in buffer) peak = Math.Max(peak, Math.Abs(v));
            foreach (var m in session.DueMarkers(ScorewrightSession.UnixNow())) markerKinds.Add(m.Kind);
        }
        Check(session.ActiveTransport == AudioTransport.Ring, "session plays the ring");
        Check(streamed > 44100 * 2 && peak > 0.01, "session streamed " + streamed + " frames at 44.1 kHz, peak " + peak.ToString("F3"));
        long underruns = session.Underruns;
        session.Dispose();

        var json = new StringBuilder("{");
        json.Append("\"ring\": ").Append(CrcJson(ringCrc)).Append(", \"tcp\": ").Append(CrcJson(tcpCrc));
        json.Append(", \"acks\": {");
        lock (acks)
            json.Append(string.Join(", ", acks.Select(a => "\"" + a.Key + "\": " + Describe(a.Value))));
        json.Append("}, \"markers\": [").Append(string.Join(", ", markerKinds.Select(k => "\"" + k + "\""))).Append("]");
        json.Append(", \"session_underruns\": ").Append(underruns).Append(", \"session_frames\": ").Append(streamed).Append("}");
        File.WriteAllText(outPath, json.ToString());
        Console.WriteLine("ok wrote " + outPath);
    }

    static void Reconnect(int port)
    {
        int hellos = 0;
        var session = new ScorewrightSession(new SessionOptions { TcpPort = port, ClientName = "core-tests-reconnect" });
        session.ReplyReceived += m => { object id; if (m.TryGetValue("id", out id) && "hello".Equals(id)) Interlocked.Increment(ref hellos); };
        session.Start();
        var block = new float[480 * 2];
        Func<Func<bool>, double, bool> playUntil = (done, seconds) =>
        {   // what an audio thread does meanwhile: 10 ms blocks, never throwing
            var end = DateTime.UtcNow.AddSeconds(seconds);
            while (!done() && DateTime.UtcNow < end) { session.FillAudio(block, 2, 48000); Thread.Sleep(10); }
            return done();
        };
        Check(playUntil(() => hellos >= 1 && session.Ring != null, 20), "connected and opened the ring");
        var first = session.Ring;
        Console.WriteLine("ready: kill and restart the server now");
        Console.Out.Flush();
        Check(playUntil(() => !session.Connected, 30), "noticed the server going away");
        Check(playUntil(() => hellos >= 2 && session.Ring != first, 60), "reconnected and reopened the new ring");
        long streamed = 0;
        var stop = DateTime.UtcNow.AddSeconds(3);
        while (DateTime.UtcNow < stop) { streamed += session.FillAudio(block, 2, 48000); Thread.Sleep(10); }
        Check(streamed > 48000, "plays again after the restart (" + streamed + " frames in 3 s)");
        Check(session.SetParam("danger", 0.3) > 0, "sends game state again");
        session.Dispose();
    }

    static string CrcJson(SortedDictionary<long, uint> crcs)
    {
        lock (crcs) return "{" + string.Join(", ", crcs.Select(kv => "\"" + kv.Key + "\": " + kv.Value)) + "}";
    }

    static string Describe(Dictionary<string, object> m)
    {
        var parts = new List<string>();
        foreach (var key in new[] { "type", "code", "frame", "due" })
        {
            object v;
            if (!m.TryGetValue(key, out v) || v == null) continue;
            string s = v is string ? "\"" + ((string)v).Replace("\"", "'") + "\"" : Convert.ToString(v, CultureInfo.InvariantCulture);
            parts.Add("\"" + key + "\": " + s);
        }
        object p;
        if (m.TryGetValue("params", out p) && p is Dictionary<string, object>)
            parts.Add("\"params\": {" + string.Join(", ", ((Dictionary<string, object>)p).Select(kv => "\"" + kv.Key + "\": " + Convert.ToString(kv.Value, CultureInfo.InvariantCulture))) + "}");
        return "{" + string.Join(", ", parts) + "}";
    }

    // ------------------------------------------------------------------ launching
    static ScorewrightSession Connect(ServerLauncher launcher, double seconds)
    {
        var session = new ScorewrightSession(new SessionOptions
        {
            TcpPort = launcher.TcpPort, Token = launcher.Token, Transport = AudioTransport.Tcp,
            ClientName = "core-tests-launch", MaxRetryMs = 250,
        });
        session.Start();
        var until = DateTime.UtcNow.AddSeconds(seconds);
        while ((session.Status == null || session.AudioMessages < 50) && DateTime.UtcNow < until) Thread.Sleep(20);
        return session;
    }

    static void Launch(string folder, string map)
    {
        string exe = ServerLauncher.FindBundled(folder);
        Check(exe != null, "found the shipped server in " + folder);
        Check(ServerLauncher.FindBundled(Path.Combine(folder, "maps")) == null, "no server where there is none");
        Check(ServerLauncher.Quote("a b\\\"c\\") == "\"a b\\\\\\\"c\\\\\"" && ServerLauncher.Quote("") == "\"\"",
              "arguments with spaces, quotes and backslashes are quoted");
        if (exe == null) return;
        var first = new ServerLauncher();
        var started = DateTime.UtcNow;
        first.Start(exe, map);
        var session = Connect(first, 30);
        var status = session.Status;
        Check(status != null && session.AudioMessages >= 50, string.Format(CultureInfo.InvariantCulture,
              "connected with its token and got 2 s of audio {0:F1} s after starting it", (DateTime.UtcNow - started).TotalSeconds));
        Console.WriteLine("map " + (status != null ? status["map"] : ""));
        int self = System.Diagnostics.Process.GetCurrentProcess().Id;
        int at = first.Arguments.IndexOf("--parent-pid");
        Check(at > 0 && first.Arguments[at + 1] == self.ToString() && first.Ring.StartsWith("unity-") && first.Token.Length == 32,
              "own ports, ring and token, and --parent-pid " + self);
        Check(!first.Arguments.Contains("--token") && !first.Describe().Contains(first.Token)
              && Environment.GetEnvironmentVariable(ServerLauncher.TokenVariable) == null,
              "the token is in the server's environment only, not on its command line");
        int pid = first.Process.Id;
        session.Dispose();
        first.Stop();
        Check(WaitExit(pid, 5), "stopped the server it started");
        var second = new ServerLauncher();
        second.Start(exe, map);
        var session2 = Connect(second, 30);
        Check(session2.Status != null, "second server up");
        Console.WriteLine("ready " + second.Process.Id + " " + second.TcpPort);
        Console.Out.Flush();
        Thread.Sleep(120000);      // the test kills this process; the server must then stop by itself
    }

    static bool WaitExit(int pid, double seconds)
    {
        var until = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < until)
        {
            try { if (System.Diagnostics.Process.GetProcessById(pid).HasExited) return true; }
            catch (ArgumentException) { return true; }
            Thread.Sleep(50);
        }
        return false;
    }

    // ------------------------------------------------------------------ helpers
    static readonly uint[] CrcTable = Enumerable.Range(0, 256).Select(n =>
    {
        uint c = (uint)n;
        for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    /// <summary>CRC-32 as zlib computes it (so Python's zlib.crc32 can compare).</summary>
    static uint Crc32(byte[] data)
    {
        uint crc = 0xFFFFFFFFu;
        foreach (byte b in data) crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc ^ 0xFFFFFFFFu;
    }

    static byte[] FromHex(string hex)
    {
        var b = new byte[hex.Length / 2];
        for (int i = 0; i < b.Length; i++) b[i] = Convert.ToByte(hex.Substring(2 * i, 2), 16);
        return b;
    }

    static string ToHex(byte[] b)
    {
        return BitConverter.ToString(b).Replace("-", "").ToLowerInvariant();
    }
}
