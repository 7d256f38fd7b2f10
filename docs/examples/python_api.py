import kt

S = "datasets/assist2009_sample/"
model = kt.train(S + "train.csv", "bkt", seed=0, out="runs/bkt")  # kt train ... --out runs/bkt
print(model.meta["valid_metrics"]["auc"])  # 10% of learners held out
res = kt.evaluate(model, S + "test.csv")  # kt evaluate: res["auc"], res["per_kc"], ...
res = kt.evaluate("runs/bkt", S + "test.csv", "multistep", history=10, horizon=5)

test = kt.load(S + "test.csv", vocab=model.vocab)  # encoded with the model's ids
preds = model.predict(test)  # P(correct) per attempt (Polars frame)
state = model.mastery(test)  # knowledge per learner x KC
graph = kt.prerequisite_graph("runs/bkt", bootstrap=20)  # kt export-graph --bootstrap 20: the default graph + stability
kt.export_graph(graph, "runs/bkt-graph.html", top_k=20)  # kt export-graph
dkt = kt.train(S + "train.csv", "dkt", hidden=64, epochs=5)  # model options as keywords
