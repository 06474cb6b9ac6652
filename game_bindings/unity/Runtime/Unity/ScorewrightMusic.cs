// Unity component: plays Scorewright's stream and sends game state to it.
using System;
using System.Collections.Generic;
using System.IO;
using Scorewright.Core;
using UnityEngine;
using UnityEngine.Events;

namespace Scorewright
{
    /// <summary>
    /// Add to a GameObject (it adds an AudioSource): the stream plays through that source's
    /// OnAudioFilterRead, resampled to Unity's output rate, so mixer groups, spatial blend and
    /// volume apply as to any other source. Call SetParam/SetState/Trigger/Notes/Prompt from
    /// game code; beat and bar events fire on the main thread when that beat is heard.
    /// </summary>
    [RequireComponent(typeof(AudioSource))]
    [AddComponentMenu("Audio/Scorewright Music")]
    public sealed class ScorewrightMusic : MonoBehaviour
    {
        [Header("Server")]
        [Tooltip("Host of `scorewright serve` (127.0.0.1 unless it was started with --host and --token).")]
        public string host = "127.0.0.1";
        [Tooltip("The server's framed TCP port (serve --tcp-port, default 7702).")]
        public int tcpPort = 7702;
        [Tooltip("The server's --token, if it has one.")]
        public string token = "";
        [Tooltip("Ring: shared memory, same machine, lowest latency. Tcp: audio over the socket.")]
        public AudioTransport transport = AudioTransport.Ring;

        [Header("Start the game's server (editor and desktop builds)")]
        [Tooltip("Start the server the game ships (StreamingAssets/<Server Folder>, from `scorewright bundle`) at once; without one (in the editor), `scorewright serve MAP` when no server answers within a second. It gets free ports, a ring and a token of its own, and is stopped with the component.")]
        public bool launchServer = true;
        [Tooltip("State map to serve: a path (relative to the project folder) or an example name such as demo. A shipped server finds it by file name in its maps/ folder (scorewright bundle --map).")]
        public string map = "demo";
        [Tooltip("Folder under StreamingAssets holding the server the game ships (scorewright bundle --out Assets/StreamingAssets/Scorewright).")]
        public string serverFolder = "Scorewright";
        [Tooltip("The command run when no shipped server is found (in the editor): scorewright on PATH, or a full path to it.")]
        public string scorewrightCommand = "scorewright";
        [Tooltip("More arguments for serve, e.g. --web-port 7710 to open the studio page of the game's server.")]
        public string[] serverArguments = new string[0];

        [Header("Latency")]
        [Tooltip("Stream audio kept waiting before playback, in 40 ms frames (2 plays on time; raise it for TCP over a network).")]
        [Range(1, 8)] public int cushionFrames = 2;

        [Header("Events (main thread, when heard)")]
        public UnityEvent<int> onBeat = new UnityEvent<int>();
        public UnityEvent<int> onBar = new UnityEvent<int>();
        /// <summary>Every marker: kind (beat, bar, transition, stinger), name, beat, bar.</summary>
        public event Action<Marker> MarkerHeard;
        /// <summary>Server errors (bad values, map errors) with a message saying what to fix.</summary>
        public event Action<string, string> ServerError;

        ScorewrightSession session;
        readonly ServerLauncher launcher = new ServerLauncher();
        int launches;
        bool answeredOnce;
        const int MaxLaunches = 3;
        int outputRate;
        double outputLatency;
        float connectDeadline;
        readonly Queue<KeyValuePair<string, string>> errors = new Queue<KeyValuePair<string, string>>();

        public bool Connected { get { return session != null && session.Connected; } }
        public long Underruns { get { return session != null ? session.Underruns : 0; } }
        public IDictionary<string, object> Status { get { return session != null ? session.Status : null; } }

        /// <summary>The id of the server process this component started, or 0.</summary>
        public int ServerProcessId { get { return launcher.Running ? launcher.Process.Id : 0; } }

        void OnEnable()
        {
            outputRate = AudioSettings.outputSampleRate;
            int bufferLength, numBuffers;
            AudioSettings.GetDSPBufferSize(out bufferLength, out numBuffers);
            outputLatency = (double)bufferLength * numBuffers / outputRate;
            launches = 0;
            answeredOnce = false;
            connectDeadline = Time.realtimeSinceStartup + 1f;
            if (launchServer && LaunchAllowed() && BundledServer() != null) LaunchServer();   // the game ships it: now
            else OpenSession(host, tcpPort, token);
            var source = GetComponent<AudioSource>();
            if (source.clip == null)
            {   // a silent looping clip keeps the source (and so OnAudioFilterRead) running
                source.clip = AudioClip.Create("scorewright-stream", outputRate, 1, outputRate, false);
                source.loop = true;
            }
            if (!source.isPlaying) source.Play();
        }

        void OpenSession(string toHost, int toPort, string withToken, int maxRetryMs = 5000)
        {
            var old = session;
            var s = new ScorewrightSession(new SessionOptions
            {
                Host = toHost, TcpPort = toPort, Transport = transport, Token = withToken,
                CushionPairs = cushionFrames * 1920, ClientName = "unity:" + Application.productName,
                MaxRetryMs = maxRetryMs,
            });
            s.ErrorReceived += (code, message) => { lock (errors) errors.Enqueue(new KeyValuePair<string, string>(code, message)); };
            s.Start();
            session = s;
            if (old != null) old.Dispose();
        }

        void Update()
        {
            if (session == null) return;
            answeredOnce |= session.Connected;
            if (launchServer && launches < MaxLaunches && LaunchAllowed())
            {
                if (launches > 0 && !launcher.Running)
                {
                    Debug.LogWarning("Scorewright: the server it started has exited; starting it again", this);
                    LaunchServer();
                }
                else if (launches == 0 && !answeredOnce && Time.realtimeSinceStartup > connectDeadline)
                    LaunchServer();
            }
            foreach (var m in session.DueMarkers(ScorewrightSession.UnixNow(), outputLatency))
            {
                if (m.Kind == "beat") onBeat.Invoke((int)m.Beat);
                else if (m.Kind == "bar") onBar.Invoke((int)m.Bar);
                if (MarkerHeard != null) MarkerHeard(m);
            }
            lock (errors)
            {
                while (errors.Count > 0)
                {
                    var e = errors.Dequeue();
                    Debug.LogWarning("Scorewright: " + e.Key + ": " + e.Value, this);
                    if (ServerError != null) ServerError(e.Key, e.Value);
                }
            }
        }

        void OnAudioFilterRead(float[] data, int channels)
        {
            var s = session;
            if (s == null) { Array.Clear(data, 0, data.Length); return; }
            s.FillAudio(data, channels, outputRate);
        }

        void OnDisable()
        {
            var s = session;
            session = null;
            if (s != null) s.Dispose();
            launcher.Stop();
        }

        static bool LaunchAllowed()
        {
            var p = Application.platform;
            return Application.isEditor || p == RuntimePlatform.WindowsPlayer || p == RuntimePlatform.OSXPlayer
                || p == RuntimePlatform.LinuxPlayer;
        }

        string BundledServer()
        {
            return ServerLauncher.FindBundled(Path.Combine(Application.streamingAssetsPath, serverFolder));
        }

        void LaunchServer()
        {
            launches++;
            string bundled = BundledServer();
            string command = bundled ?? ServerLauncher.FindOnPath(scorewrightCommand) ?? scorewrightCommand;
            // a shipped server finds the map by file name in its maps/ folder (scorewright bundle --map)
            string mapArg = File.Exists(map) ? Path.GetFullPath(map) : bundled != null ? Path.GetFileName(map) : map;
            try
            {
                launcher.Start(command, mapArg, serverArguments);
                Debug.Log("Scorewright: started `" + launcher.Describe() + "`", this);
                OpenSession("127.0.0.1", launcher.TcpPort, launcher.Token, 250);   // it listens within a second
            }
            catch (Exception e)
            {
                launches = MaxLaunches;
                Debug.LogWarning("Scorewright: no server on " + host + ":" + tcpPort + ", none in StreamingAssets/" + serverFolder +
                                 ", and `" + command + "` could not be started (" + e.Message + "). Ship one (scorewright bundle), " +
                                 "install Scorewright (see its README) or run `scorewright serve MAP` yourself; the game keeps " +
                                 "running without music.", this);
                if (session == null) OpenSession(host, tcpPort, token);
            }
        }

        // ------------------------------------------------------------ game state
        /// <summary>A continuous parameter (RTPC), e.g. SetParam("danger", 0.7f).</summary>
        public void SetParam(string param, float value) { if (session != null) session.SetParam(param, value); }
        /// <summary>A discrete state, e.g. SetState("area", "cave").</summary>
        public void SetState(string group, string value) { if (session != null) session.SetState(group, value); }
        /// <summary>A one-shot event (may fire a stinger), e.g. Trigger("player_died").</summary>
        public void Trigger(string eventName) { if (session != null) session.Trigger(eventName); }
        /// <summary>MIDI notes on/off (0-127).</summary>
        public void Notes(int[] on, int[] off = null) { if (session != null) session.Notes(on, off); }
        /// <summary>Blend a text style in at `weight` (0 removes it).</summary>
        public void Prompt(string text, float weight = 1f, string promptName = null) { if (session != null) session.Prompt(text, weight, promptName); }
        /// <summary>"play", "pause" (fade to silence) or "stop".</summary>
        public void Transport(string cmd) { if (session != null) session.Transport(cmd); }
    }
}
