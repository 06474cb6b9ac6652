// Example: drive Scorewright from a game. Put ScorewrightMusic on a GameObject, drag it into
// `music`, press Play; arrow keys change the area, space raises danger, K fires a stinger.
using Scorewright;
using UnityEngine;

public sealed class ExampleGame : MonoBehaviour
{
    public ScorewrightMusic music;
    readonly string[] areas = { "forest", "cave", "castle" };   // the bundled demo map (scorewright serve demo)
    int area;
    float danger;

    void Start()
    {
        music.onBar.AddListener(bar => Debug.Log("bar " + bar));
        music.ServerError += (code, message) => Debug.LogWarning(code + ": " + message);
    }

    void Update()
    {
        if (Input.GetKeyDown(KeyCode.RightArrow)) music.SetState("area", areas[area = (area + 1) % areas.Length]);
        if (Input.GetKeyDown(KeyCode.LeftArrow)) music.SetState("area", areas[area = (area + areas.Length - 1) % areas.Length]);
        float target = Input.GetKey(KeyCode.Space) ? 1f : 0f;
        float next = Mathf.MoveTowards(danger, target, Time.deltaTime * 0.5f);
        if (Mathf.Abs(next - danger) > 0.01f || (next != danger && (next == 0f || next == 1f)))
            music.SetParam("danger", danger = next);          // send changes, not every frame
        if (Input.GetKeyDown(KeyCode.K)) music.Trigger("player_died");
        if (Input.GetKeyDown(KeyCode.Escape)) music.Transport("pause");
        if (Input.GetKeyDown(KeyCode.Return)) music.Transport("play");
    }
}
